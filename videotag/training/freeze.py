"""Layers kept fixed during training (`train.freeze`): fine-tuning, frozen text encoders."""

from __future__ import annotations

import fnmatch
from typing import List, Sequence, Tuple

import keras

from videotag.errors import ConfigError
from videotag.training.distribution import nested_layers


def matching_layers(model: keras.Model, pattern: str,
                    key: str = "train.freeze") -> List[Tuple[str, keras.layers.Layer]]:
    """The (path, layer) pairs of `model`'s layers, at any depth, whose path matches
    the shell-style `pattern`.

    A layer's path is Keras's `layer.path` (`nextvlad_rgb`, `context_gating/squeeze`;
    a layer without weights may have none: its name is its path then).

    Raises:
        ConfigError: the pattern matches no layer (the message names `key` and lists
            the model's top-level layers).
    """
    layers = [(layer.path or layer.name, layer) for layer in nested_layers(model)]
    matched = [(path, layer) for path, layer in layers if fnmatch.fnmatchcase(path, pattern)]
    if not matched:
        names = ", ".join(layer.name for layer in model.layers)
        raise ConfigError(f"config key '{key}' has the pattern '{pattern}', which "
                          f"matches no layer of {model.name} (its layers: {names})")
    return matched


def freeze_layers(model: keras.Model, patterns: Sequence[str],
                  key: str = "train.freeze") -> List[str]:
    """Makes every layer whose path matches one of `patterns` non-trainable.

    Patterns are shell-style (`fnmatch`) over layer paths (see `matching_layers`).
    Freezing a layer freezes everything inside it; its batch norms then run on
    their moving statistics, as Keras does for a non-trainable batch norm. Call this
    before the optimizer is built on `model.trainable_variables`.

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
    frozen = set()
    for pattern in patterns:
        for path, layer in matching_layers(model, pattern, key):
            layer.trainable = False
            frozen.add(path)
    return sorted(frozen)


def configured_freezes(cfg) -> List[Tuple[str, List[str]]]:
    """Every (config key, patterns) that asks for frozen layers: `train.freeze`, then
    the model section's own (`ModelConfig.frozen_layers()`, e.g. a text encoder's
    `freeze` flag)."""
    found = [("train.freeze", list(cfg.train.freeze))] if cfg.train.freeze else []
    return found + sorted(cfg.model.frozen_layers().items())


def freeze_configured(model: keras.Model, cfg) -> List[str]:
    """Freezes the layers of every key of `configured_freezes(cfg)`, through
    `freeze_layers`; returns the frozen paths, sorted."""
    frozen = set()
    for key, patterns in configured_freezes(cfg):
        frozen.update(freeze_layers(model, patterns, key))
    return sorted(frozen)
