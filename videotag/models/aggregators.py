"""Frame aggregators by name: the building blocks that MULTIMODAL composes.

An aggregator turns one modality's frames into one vector:
`fn(x, mask, params, name, index) -> [B, D]`, where `x` is the dequantized frames
[B, T, size], `mask` the bool frame mask [B, T], `params` a dict of hyper-parameters
(the aggregator's own keys; unknown keys raise `ConfigError`), `name` a prefix for its
layer names and `index` the modality's position (0 for rgb; NeXtVLAD-style
aggregators use half the clusters for later modalities). Video models register the
aggregator they are built on, so MULTIMODAL can use any of them per modality.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import keras

from videotag.errors import ConfigError

AggregatorFn = Callable[[keras.KerasTensor, keras.KerasTensor, Dict[str, Any], str, int],
                        keras.KerasTensor]
_AGGREGATORS: Dict[str, tuple] = {}


def register_aggregator(name: str, defaults: Dict[str, Any]):
    """Decorator: registers `fn` under `name` with its default hyper-parameters."""

    def wrap(fn: AggregatorFn) -> AggregatorFn:
        _AGGREGATORS[name.upper()] = (fn, dict(defaults))
        return fn

    return wrap


def list_aggregators():
    """Names of the registered aggregators, sorted."""
    return sorted(_AGGREGATORS)


def aggregator_params(kind: str, params: Optional[Dict[str, Any]] = None,
                      where: str = "aggregator") -> Dict[str, Any]:
    """The aggregator's defaults updated with `params`, checked key by key."""
    fn, defaults = _lookup(kind, where)
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ConfigError(
            f"config key '{where}' gives '{unknown[0]}', which aggregator {kind.upper()} "
            f"does not take (valid: {', '.join(sorted(defaults))})"
        )
    return {**defaults, **params}


def build_aggregator(kind: str, x, mask, params: Optional[Dict[str, Any]] = None,
                     name: str = "agg", index: int = 0, where: str = "aggregator"):
    """Applies the aggregator `kind` to frames `x` [B, T, D] under `mask` [B, T]."""
    fn, _ = _lookup(kind, where)
    return fn(x, mask, aggregator_params(kind, params, where), name, index)


def _lookup(kind: str, where: str):
    key = str(kind).upper()
    if key not in _AGGREGATORS:
        raise ConfigError(
            f"config key '{where}' names an unknown aggregator '{kind}' "
            f"(valid: {', '.join(list_aggregators())})"
        )
    return _AGGREGATORS[key]
