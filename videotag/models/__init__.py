"""Registered models. Importing this package registers every model."""

from videotag.models import (  # noqa: F401
    attention_cluster,
    attention_lstm,
    dbof,
    logistic,
    lstm,
    mix_nextvlad,
    moe,
    multimodal,
    netfv,
    netrvlad,
    netvlad,
    nextvlad,
    softdbof,
    trn,
)
