"""SOFTDBOF: gated soft deep bag of frames (LOUPE, Miech et al. 2017,
arXiv 1706.06905)."""

from dataclasses import dataclass

from videotag.layers import SoftDBoF
from videotag.models.aggregators import AGGREGATORS
from videotag.models.loupe import LoupeConfig, LoupePoolingParams, build_loupe, pooling_aggregator
from videotag.registry import register_model


@dataclass
class SoftDBoFConfig(LoupeConfig):
    """Soft-DBoF hyper-parameters (defaults: the paper's, K=4096; audio K/8).

    Attributes:
        max_pool: also append the max-pooled assignments to the summed ones.
    """

    name: str = "SOFTDBOF"
    cluster_size: int = 4096
    max_pool: bool = False


@dataclass
class SoftDBoFParams(LoupePoolingParams):
    """Parameters of the SOFTDBOF aggregator (K=4096, later modalities K/8).

    Attributes:
        max_pool: also append the max-pooled assignments to the summed ones.
    """

    cluster_size: int = 4096
    max_pool: bool = False


AGGREGATORS.register("SOFTDBOF", SoftDBoFParams)(
    pooling_aggregator(SoftDBoF, "softdbof", divisor=8))


@register_model("SOFTDBOF", SoftDBoFConfig)
def build_softdbof(cfg):
    """Gated soft-DBoF video classifier; outputs `tags` and `embedding`."""
    return build_loupe(cfg, "SOFTDBOF")
