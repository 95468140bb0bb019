"""The `train.optimizer` component: Adam, AdamW or RMSProp and their parameters.

Written in YAML like every component (see `videotag.config.components`):

    optimizer: adam                                    # the default
    optimizer: {type: adamw, weight_decay: 0.01}
    optimizer: {type: rmsprop, centered: true}         # PaddleVideo's Attention-LSTM

Each parameter dataclass holds what the optimizer's Keras class takes beside the
learning rate; the defaults are those of the reference each type follows (Keras's
for Adam and AdamW, PaddlePaddle's `paddle.optimizer.RMSProp` for RMSProp: rho
0.95, epsilon 1e-6, the values PaddleVideo's Attention-LSTM trains with). The
Keras optimizer itself is made by `videotag.training.step.make_optimizer`, the one
optimizer factory of the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict

from videotag.config import engine
from videotag.config.components import Registry
from videotag.errors import ConfigError

OPTIMIZERS = Registry("optimizer", default="adam")


@dataclass
class AdamParams:
    """Adam (Kingma and Ba 2015), Keras's `keras.optimizers.Adam` defaults.

    Attributes:
        beta_1: decay of the first-moment estimate.
        beta_2: decay of the second-moment estimate.
        epsilon: added to the root of the second moment.
    """

    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7

    def validate(self, path: str) -> None:
        """Betas in [0, 1), epsilon positive."""
        for key in ("beta_1", "beta_2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"config key '{engine.join(path, key)}' must be in [0, 1)")
        engine.check_positive(path, self, ("epsilon",))


@dataclass
class AdamWParams(AdamParams):
    """AdamW (Loshchilov and Hutter 2019): Adam with decoupled weight decay.

    Attributes:
        weight_decay: each step multiplies every trained weight by
            `1 - learning_rate * weight_decay` (Keras's `AdamW`, default 0.004);
            apart from `train.weight_decay`, an L2 term of the loss.
    """

    weight_decay: float = 0.004

    def validate(self, path: str) -> None:
        """Adam's rules, and a weight decay that is not negative."""
        super().validate(path)
        engine.check_positive(path, self, ("weight_decay",), strict=False)


@dataclass
class RMSPropParams:
    """RMSProp with PaddlePaddle's defaults (`paddle.optimizer.RMSProp`).

    The update is PaddlePaddle's and Keras's alike: `r = rho r + (1 - rho) g^2`
    (centered: minus the square of the moving mean of g), `w -= lr g / sqrt(r +
    epsilon)`, with momentum when set.

    Attributes:
        rho: decay of the moving mean square of the gradient (Paddle: 0.95).
        epsilon: added under the square root (Paddle: 1e-6).
        momentum: momentum of the update (Paddle: 0).
        centered: divide by the estimated variance of the gradient instead of its
            second moment (PaddleVideo's Attention-LSTM: true).
    """

    rho: float = 0.95
    epsilon: float = 1e-6
    momentum: float = 0.0
    centered: bool = False

    def validate(self, path: str) -> None:
        """rho and momentum in [0, 1), epsilon positive."""
        for key in ("rho", "momentum"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ConfigError(f"config key '{engine.join(path, key)}' must be in [0, 1)")
        engine.check_positive(path, self, ("epsilon",))


def _keras_arguments(params) -> Dict[str, Any]:
    return dict(vars(params))


@OPTIMIZERS.register("adam", AdamParams)
def adam(params: AdamParams) -> Dict[str, Any]:
    """Keyword arguments of `keras.optimizers.Adam` beside the learning rate."""
    return _keras_arguments(params)


@OPTIMIZERS.register("adamw", AdamWParams)
def adamw(params: AdamWParams) -> Dict[str, Any]:
    """Keyword arguments of `keras.optimizers.AdamW` beside the learning rate."""
    return _keras_arguments(params)


@OPTIMIZERS.register("rmsprop", RMSPropParams)
def rmsprop(params: RMSPropParams) -> Dict[str, Any]:
    """Keyword arguments of `keras.optimizers.RMSprop` beside the learning rate."""
    return _keras_arguments(params)
