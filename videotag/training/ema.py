"""The moving average of the weights (`train.ema_decay`), on Keras's own mechanism.

The optimizer keeps it (`use_ema`, `ema_momentum`): after each update, every
trained weight's average becomes `decay * average + (1 - decay) * weight` (the
weight itself after the first step). The averages are optimizer variables, so each
checkpoint holds them beside the raw weights, and a resumed run goes on averaging
where it stopped. Validation, `model.keras`, export and prediction use the
averages; training goes on with the raw weights.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, List

import keras
import numpy as np


def keeps_average(optimizer) -> bool:
    """Whether `optimizer` (or the optimizer inside a loss-scale optimizer) keeps
    the moving average of the weights."""
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return bool(getattr(inner, "use_ema", False))


@contextlib.contextmanager
def averaged_weights(model: keras.Model, optimizer) -> Iterator[bool]:
    """Within the block the trained weights of `model` hold their moving averages;
    the raw weights are put back after it.

    Nothing changes when the optimizer keeps no average or has taken no step yet
    (its averages are then still zeros). Yields whether the averages are in place.
    """
    if not keeps_average(optimizer) or int(optimizer.iterations.numpy()) == 0:
        yield False
        return
    variables = model.trainable_variables
    raw = [np.array(v.numpy()) for v in variables]
    optimizer.finalize_variable_values(variables)  # Keras: weights <- their averages
    try:
        yield True
    finally:
        for variable, value in zip(variables, raw):
            variable.assign(value)


def averaged_values(model: keras.Model, optimizer) -> List[np.ndarray]:
    """Every weight of `model` (`model.weights` order), trained ones replaced by
    their moving averages when the optimizer keeps them."""
    with averaged_weights(model, optimizer):
        return [np.array(v.numpy()) for v in model.weights]
