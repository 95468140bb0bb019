"""NETFV: gated NetFV, a learnable Fisher vector (LOUPE, Miech et al. 2017,
arXiv 1706.06905)."""

from dataclasses import dataclass

from videotag.layers import NetFV
from videotag.models.aggregators import AGGREGATORS
from videotag.models.loupe import LoupeConfig, LoupePoolingParams, build_loupe, pooling_aggregator
from videotag.registry import register_model


@dataclass
class NetFVConfig(LoupeConfig):
    """NetFV hyper-parameters (defaults: the paper's, K=128); see `LoupeConfig`."""

    name: str = "NETFV"
    cluster_size: int = 128


@dataclass
class NetFVParams(LoupePoolingParams):
    """Parameters of the NETFV aggregator (K=32 by default)."""

    cluster_size: int = 32


AGGREGATORS.register("NETFV", NetFVParams)(
    pooling_aggregator(NetFV, "netfv", divisor=2))


@register_model("NETFV", NetFVConfig)
def build_netfv(cfg):
    """Gated NetFV video classifier; outputs `tags` and `embedding`."""
    return build_loupe(cfg, "NETFV")
