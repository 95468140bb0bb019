"""Registered models. Importing this package registers every model."""

from videotag.models import (  # noqa: F401
    attention_cluster,
    attention_lstm,
    dbof,
    lstm,
    multimodal,
    netfv,
    netrvlad,
    netvlad,
    nextvlad,
    softdbof,
    trn,
)
