"""SOFTDBOF: soft deep bag of frames (LOUPE, Miech et al. 2017, arXiv 1706.06905).

By default the authors' gated soft-DBoW (`GatedDbofModelLF` of their YT8M code,
antoine77340/Youtube-8M-WILLOW frame_level_models.py): the rgb soft histogram
gated by its own maximum (`GatedDBoF`), the audio one plain (`SoftDBoF`), a hidden
layer, no Context Gating. With `gated_pooling: false` and `gating: true` it is their
`SoftDbofModelLF` with Context Gating on the hidden layer added.
"""

from dataclasses import dataclass

from videotag.errors import ConfigError
from videotag.layers import SoftDBoF
from videotag.models.aggregators import AGGREGATORS
from videotag.models.loupe import LoupeConfig, LoupePoolingParams, build_loupe, pooling_aggregator
from videotag.registry import register_model


@dataclass
class SoftDBoFConfig(LoupeConfig):
    """Soft-DBoF hyper-parameters (defaults: the authors' gated soft-DBoW command,
    K=4096; audio K/8). See `LoupeConfig`.

    Attributes:
        max_pool: also append the max-pooled assignments to the summed ones (not
            with `gated_pooling`).
        gated_pooling: gate the first modality's summed assignments by their
            maximum (their `GatedDBoF`); later modalities are never gated.
    """

    name: str = "SOFTDBOF"
    cluster_size: int = 4096
    max_pool: bool = False
    gated_pooling: bool = True
    gating: bool = False


@dataclass
class SoftDBoFParams(LoupePoolingParams):
    """Parameters of the SOFTDBOF aggregator (K=4096, later modalities K/8).

    Attributes:
        max_pool: also append the max-pooled assignments to the summed ones.
        gated_pooling: gate the first modality's sum by its maximum.
    """

    cluster_size: int = 4096
    max_pool: bool = False
    gated_pooling: bool = False

    def validate(self, path: str) -> None:
        """K > 0; `max_pool` and `gated_pooling` exclude each other."""
        super().validate(path)
        if self.max_pool and self.gated_pooling:
            raise ConfigError(f"config keys '{path}.max_pool' and '{path}.gated_pooling' "
                              "cannot both be true")


def _soft_dbof(cluster_size, gated_pooling=False, **kwargs):
    return SoftDBoF(cluster_size=cluster_size, gated=gated_pooling, **kwargs)


AGGREGATORS.register("SOFTDBOF", SoftDBoFParams)(
    pooling_aggregator(_soft_dbof, "softdbof", divisor=8, first_only=("gated_pooling",)))


@register_model("SOFTDBOF", SoftDBoFConfig)
def build_softdbof(cfg):
    """Soft-DBoF video classifier; outputs `tags` and `embedding`."""
    return build_loupe(cfg, "SOFTDBOF")
