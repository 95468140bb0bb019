"""NETFV: gated NetFV, a learnable Fisher vector (LOUPE, Miech et al. 2017,
arXiv 1706.06905)."""

from dataclasses import dataclass

from videotag.layers import NetFV
from videotag.models.aggregators import register_aggregator
from videotag.models.loupe import LoupeConfig, build_loupe, pooling_aggregator
from videotag.registry import register_model


@dataclass
class NetFVConfig(LoupeConfig):
    """NetFV hyper-parameters (defaults: the paper's, K=128); see `LoupeConfig`."""

    name: str = "NETFV"
    cluster_size: int = 128


register_aggregator("NETFV", {"cluster_size": 32, "input_bn": True})(
    pooling_aggregator(NetFV, "netfv", divisor=2))


@register_model("NETFV", NetFVConfig)
def build_netfv(cfg):
    """Gated NetFV video classifier; outputs `tags` and `embedding`."""
    return build_loupe(cfg, "NETFV")
