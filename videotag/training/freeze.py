"""Layers kept fixed during training (`train.freeze`): fine-tuning, frozen text encoders."""

from __future__ import annotations

import fnmatch
from typing import List, Sequence

import keras

from videotag.errors import ConfigError
from videotag.training.distribution import nested_layers


def freeze_layers(model: keras.Model, patterns: Sequence[str],
                  key: str = "train.freeze") -> List[str]:
    """Makes every layer whose path matches one of `patterns` non-trainable.

    A layer's path is Keras's `layer.path` (`nextvlad_rgb`, `context_gating/squeeze`);
    patterns are shell-style (`fnmatch`). Freezing a layer freezes everything inside
    it; its batch norms then run on their moving statistics, as Keras does for a
    non-trainable batch norm. Call this before the optimizer is built on
    `model.trainable_variables`.

    Args:
        model: the model to freeze layers of.
        patterns: shell-style patterns over layer paths.
        key: the config key the patterns come from (for error messages).

    Returns:
        The paths of the layers frozen by a pattern (not their inner layers), sorted.

    Raises:
        ConfigError: a pattern matches no layer (the message lists the model's
            top-level layers).
    """
    if not patterns:
        return []
    # a layer without weights may have no path: its name is its path then
    layers = [(layer.path or layer.name, layer) for layer in nested_layers(model)]
    frozen = set()
    for pattern in patterns:
        matched = [(path, layer) for path, layer in layers if fnmatch.fnmatchcase(path, pattern)]
        if not matched:
            names = ", ".join(layer.name for layer in model.layers)
            raise ConfigError(f"config key '{key}' has the pattern '{pattern}', which "
                              f"matches no layer of {model.name} (its layers: {names})")
        for path, layer in matched:
            layer.trainable = False
            frozen.add(path)
    return sorted(frozen)
