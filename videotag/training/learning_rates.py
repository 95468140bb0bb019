"""Per-layer learning rates (`train.lr_multipliers`): a multiplier per trainable weight.

Layers are chosen by the patterns of `train.freeze` (shell-style over layer paths,
`videotag.training.freeze.matching_layers`); every weight of a matching layer has
its learning rate multiplied, e.g. a pretrained title encoder fine-tuned at a tenth
of the rate of the layers trained from scratch. The optimizer applies it in its
update of each weight (`LearningRateMultipliers`), whatever the schedule: the
update of a weight with multiplier m is the one the optimizer makes at m times the
learning rate.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Sequence

import keras

from videotag.training.freeze import matching_layers


def variable_multipliers(model: keras.Model, multipliers: Mapping[str, float],
                         key: str = "train.lr_multipliers") -> List[float]:
    """The multiplier of each of `model.trainable_variables`, in that order.

    Args:
        model: the model (its layers frozen already).
        multipliers: {pattern: multiplier}; a later pattern overrides an earlier one
            for the weights both reach; weights no pattern reaches keep 1.
        key: the config key, for messages.

    Raises:
        ConfigError: a pattern matches no layer.
    """
    by_variable: Dict[int, float] = {}
    for pattern, multiplier in multipliers.items():
        for _, layer in matching_layers(model, pattern, f"{key}.{pattern}"):
            for variable in layer.weights:
                by_variable[id(variable)] = float(multiplier)
    return [by_variable.get(id(v), 1.0) for v in model.trainable_variables]


class LearningRateMultipliers:
    """Mixin for a Keras optimizer class: a learning-rate multiplier per variable.

    Put it before the optimizer in the bases (`class X(LearningRateMultipliers,
    keras.optimizers.Adam)`); after `build(variables)`, call
    `set_learning_rate_multipliers` with one multiplier per variable. Each variable's
    update step then runs at its multiplier times the learning rate.

    `update_step(gradient, variable, learning_rate)` is the method Keras documents
    for optimizers to implement; the variable's position is looked up with the
    optimizer's `_get_variable_index`, the private lookup Keras's own `update_step`
    implementations use (tests/test_keras_hooks.py fails, naming it, when a Keras
    release changes it). Decoupled weight decay (AdamW) is applied by Keras apart
    from `update_step` and is not scaled.
    """

    _lr_multipliers: tuple = ()

    def set_learning_rate_multipliers(self, multipliers: Sequence[float]) -> None:
        """One multiplier per variable given to `build`, in that order (empty: none)."""
        multipliers = tuple(float(m) for m in multipliers)
        if multipliers and len(multipliers) != len(self._trainable_variables):
            raise ValueError(f"{len(multipliers)} learning-rate multipliers for "
                             f"{len(self._trainable_variables)} variables")
        self._lr_multipliers = multipliers if any(m != 1.0 for m in multipliers) else ()

    @property
    def learning_rate_multipliers(self) -> tuple:
        """The multipliers set, one per variable (empty: all 1)."""
        return self._lr_multipliers

    def multiplied_learning_rate(self, variable, learning_rate):
        """`learning_rate` times `variable`'s multiplier (itself without one)."""
        if self._lr_multipliers:
            multiplier = self._lr_multipliers[self._get_variable_index(variable)]
            if multiplier != 1.0:
                return learning_rate * multiplier
        return learning_rate

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = self.multiplied_learning_rate(variable, learning_rate)
        return super().update_step(gradient, variable, learning_rate)


def set_learning_rate_multipliers(optimizer, model: keras.Model,
                                  multipliers: Mapping[str, float]) -> None:
    """Gives a built optimizer from `make_optimizer` (or its loss-scale wrapper) the
    multipliers of `train.lr_multipliers` for `model`'s trainable variables."""
    if not multipliers:
        return
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    inner.set_learning_rate_multipliers(variable_multipliers(model, multipliers))
