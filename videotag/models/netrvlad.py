"""NETRVLAD: gated NetRVLAD, NetVLAD without centres (LOUPE, Miech et al. 2017,
arXiv 1706.06905)."""

from dataclasses import dataclass

from videotag.layers import NetRVLAD
from videotag.models.aggregators import AGGREGATORS
from videotag.models.loupe import LoupeConfig, LoupePoolingParams, build_loupe, pooling_aggregator
from videotag.registry import register_model


@dataclass
class NetRVLADConfig(LoupeConfig):
    """NetRVLAD hyper-parameters (defaults: the paper's); see `LoupeConfig`."""

    name: str = "NETRVLAD"


AGGREGATORS.register("NETRVLAD", LoupePoolingParams)(
    pooling_aggregator(NetRVLAD, "netrvlad", divisor=2))


@register_model("NETRVLAD", NetRVLADConfig)
def build_netrvlad(cfg):
    """Gated NetRVLAD video classifier; outputs `tags` and `embedding`."""
    return build_loupe(cfg, "NETRVLAD")
