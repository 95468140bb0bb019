"""Frame aggregators by name: the building blocks that MULTIMODAL composes.

An aggregator turns one modality's frames into one vector. Video models register
the aggregator they are built on, with the dataclass of its parameters, so
MULTIMODAL can use any of them per modality:

    @AGGREGATORS.register("NEXTVLAD", NeXtVLADParams)
    def nextvlad_aggregator(params, x, mask, name, index): ...

The builder takes its parameters (an instance of the registered dataclass), `x`
the dequantized frames [B, T, size], `mask` the bool frame mask [B, T], `name` a
prefix for its layer names and `index` the modality's position (0 for rgb;
NeXtVLAD-style aggregators use fewer clusters for later modalities), and returns
[B, D]. In a config an aggregator is `{type: NEXTVLAD, cluster_size: 32}` (see
`videotag.config.components`).
"""

from __future__ import annotations

from typing import Any

from videotag.config.components import Component, Registry

AGGREGATORS = Registry("aggregator", default="NEXTVLAD", upper=True)


def build_aggregator(aggregator: Any, x, mask, name: str = "agg", index: int = 0,
                     path: str = "aggregator"):
    """Applies an aggregator to frames `x` [B, T, D] under `mask` [B, T].

    Args:
        aggregator: a `Component` of `AGGREGATORS`, or its config form (a name, or
            a mapping of `type` and parameters).
        x: float frames [B, T, D].
        mask: bool [B, T], True for valid frames.
        name: prefix of its layer names.
        index: the modality's position.
        path: the dotted config key of `aggregator`, for messages.

    Returns:
        [B, D_out].

    Raises:
        ConfigError: unknown aggregator or parameter, naming the key.
    """
    component: Component = AGGREGATORS.read(aggregator, path)
    return AGGREGATORS.build(component, x, mask, name, index)
