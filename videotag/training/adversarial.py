"""FGM adversarial training (Goodfellow et al. 2015; Miyato et al. 2017).

The loss of a batch is `clean + alpha * adversarial`: the clean loss, and the loss of
the same batch with its perturbable inputs moved by `r = epsilon * g / ||g||_2`,
where g is the gradient of the clean loss with respect to those inputs, per example
and per input (r is a constant: no gradient flows through it).

The perturbable inputs are float tensors inside the model: the dequantized frames
(outputs of the `dequantize_<feature>` layers) and the title word embeddings (output
of `title_embedding`). Every videotag model reaches its raw inputs only through
those layers and `frame_mask`, `title_tokens`, `title_mask` (see
`videotag/models/interface.py`), so `SplitModel` cuts it there into a `preprocess` part
(raw inputs -> those tensors) and a `body` (those tensors -> outputs), which share
the model's layers and weights.
"""

from __future__ import annotations

from typing import Callable, Dict, Tuple

import keras
import tensorflow as tf

from videotag.errors import ConfigError

PERTURBABLE_PREFIX = "dequantize_"
TITLE_EMBEDDING = "title_embedding"
OTHER_CUT_LAYERS = ("frame_mask", "title_tokens", "title_mask")


class SplitModel:
    """A videotag model cut after its input layers.

    Attributes:
        model: the whole model.
        names: the cut layers, in the order of `preprocess`'s outputs.
        perturbable: the names (a subset of `names`) that FGM perturbs.
        preprocess: Keras model, the model's inputs -> list of cut tensors.
        body: Keras model, list of cut tensors -> the model's outputs.

    Raises:
        ConfigError: the model has no perturbable layer.
    """

    def __init__(self, model: keras.Model):
        self.model = model
        layers = [layer for layer in model.layers
                  if layer.name.startswith(PERTURBABLE_PREFIX)
                  or layer.name in (TITLE_EMBEDDING,) + OTHER_CUT_LAYERS]
        self.names = [layer.name for layer in layers]
        self.perturbable = [n for n in self.names
                            if n.startswith(PERTURBABLE_PREFIX) or n == TITLE_EMBEDDING]
        if not self.perturbable:
            raise ConfigError(
                f"train.fgm_alpha > 0 needs a model with '{PERTURBABLE_PREFIX}<feature>' or "
                f"'{TITLE_EMBEDDING}' layers to perturb; model '{model.name}' has none"
            )
        tensors = [layer.output for layer in layers]
        self.preprocess = keras.Model(model.input, tensors, name=f"{model.name}_preprocess")
        self.body = keras.Model(tensors, model.output, name=f"{model.name}_body")

    def cut(self, inputs, training=None) -> Dict[str, tf.Tensor]:
        """The cut tensors by layer name."""
        return dict(zip(self.names, self.preprocess(inputs, training=training)))

    def outputs(self, cut: Dict[str, tf.Tensor], training=None):
        """The model's outputs from the cut tensors."""
        return self.body([cut[n] for n in self.names], training=training)


def perturbation(gradient: tf.Tensor, epsilon: float) -> tf.Tensor:
    """`epsilon * g / ||g||_2` per example (the norm over all but the batch axis).

    Computed in float32 and returned in the gradient's dtype, without gradient. An
    example whose gradient is zero or not finite (an overflow under float16 loss
    scaling) gets no perturbation.
    """
    g = tf.cast(gradient, tf.float32)
    axes = list(range(1, len(g.shape)))
    finite = tf.reduce_all(tf.math.is_finite(g), axis=axes, keepdims=True)
    g = tf.where(finite, g, 0.0)
    norm = tf.sqrt(tf.reduce_sum(tf.square(g), axis=axes, keepdims=True))
    r = epsilon * tf.math.divide_no_nan(g, norm)
    return tf.stop_gradient(tf.cast(r, gradient.dtype))


def fgm_forward(split: SplitModel, inputs, loss_fn: Callable, epsilon: float,
                training=True, scale_fn: Callable = None
                ) -> Tuple[tf.Tensor, tf.Tensor, Dict[str, tf.Tensor]]:
    """Clean and adversarial losses of one batch, for the caller's gradient tape.

    Args:
        split: the model, cut.
        inputs: the model's inputs (dict of raw tensors).
        loss_fn: model outputs -> scalar loss.
        epsilon: norm of the perturbation per example and per perturbed tensor.
        training: passed to the layers (both passes).
        scale_fn: applied to the clean loss before taking g (the float16 loss
            scale, which r's normalisation cancels); None: identity.

    Returns:
        (clean loss, adversarial loss, perturbations by layer name).
    """
    cut = split.cut(inputs, training=training)
    watched = [cut[n] for n in split.perturbable]
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(watched)
        clean = loss_fn(split.outputs(cut, training=training))
        scaled = scale_fn(clean) if scale_fn is not None else clean
    grads = tape.gradient(scaled, watched)
    deltas = {}
    for name, grad in zip(split.perturbable, grads):
        deltas[name] = (perturbation(grad, epsilon) if grad is not None
                        else tf.zeros_like(cut[name]))
    moved = {n: (cut[n] + deltas[n] if n in deltas else cut[n]) for n in split.names}
    adversarial = loss_fn(split.outputs(moved, training=training))
    return clean, adversarial, deltas

