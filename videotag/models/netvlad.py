"""NETVLAD: gated NetVLAD (LOUPE, Miech et al. 2017, arXiv 1706.06905).

The best single model of the 2017 YT8M winners (K=256, hidden 1024, Context Gating,
gated mixture-of-experts head).
"""

from dataclasses import dataclass

from videotag.layers import NetVLAD
from videotag.models.aggregators import AGGREGATORS
from videotag.models.loupe import LoupeConfig, LoupePoolingParams, build_loupe, pooling_aggregator
from videotag.registry import register_model


@dataclass
class NetVLADConfig(LoupeConfig):
    """NetVLAD hyper-parameters (defaults: the paper's); see `LoupeConfig`."""

    name: str = "NETVLAD"


AGGREGATORS.register("NETVLAD", LoupePoolingParams)(
    pooling_aggregator(NetVLAD, "netvlad", divisor=2))


@register_model("NETVLAD", NetVLADConfig)
def build_netvlad(cfg):
    """Gated NetVLAD video classifier; outputs `tags` and `embedding`."""
    return build_loupe(cfg, "NETVLAD")
