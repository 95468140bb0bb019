"""Fusion of modality vectors (rgb, audio, title) into one video vector.

- `concat_se` (seed 000's SE-gate block): concatenate, dropout, dense (no bias),
  batch norm, SE context gating.
- `gated` (seed 000's gate-fusion block, in the form of the gated multimodal unit of
  Arevalo et al. 2017): each modality projected to H units (tanh); a gate computed
  from all modalities weighs them per unit (softmax over modalities); their
  weighted sum, then SE context gating.
- `text_guided` (seed 001): the title vector steers an attention over the frames of
  each modality (`TextGuidedAttention`, masked softmax over the valid frames); the
  attention-pooled frames join the modality vectors and the title in `concat_se`.
  Seed 001 runs an LSTM over the frames before this pooling; here a dense layer
  projects each frame, and the sequence modelling is left to the aggregators, whose
  vectors are kept beside the pooled frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Sequence

import keras
from keras import layers, ops

from videotag.config.components import Registry
from videotag.errors import ConfigError
from videotag.layers.gating import SEContextGating
from videotag.layers.ops import masked_softmax


@keras.saving.register_keras_serializable(package="videotag")
class ConcatSEFusion(keras.layers.Layer):
    """Concatenation + dropout + dense (no bias) + batch norm + SE context gating.

    Args:
        hidden_size: H, units of the dense layer.
        gating_reduction: r of the SE gating (0: no gating).
        excite_bias: a bias in the SE gating's excitation (see `SEContextGating`).
        dropout: rate before the dense layer.
    Call args:
        inputs: a list of [B, D_i] vectors.
    Shapes:
        -> [B, H].
    """

    def __init__(self, hidden_size: int = 512, gating_reduction: int = 8, dropout: float = 0.5,
                 excite_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.gating_reduction = int(gating_reduction)
        self.excite_bias = bool(excite_bias)
        self.dropout = float(dropout)
        self.drop = layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.dense = layers.Dense(self.hidden_size, use_bias=False, name="hidden",
                                  dtype=self.dtype_policy)
        self.bn = layers.BatchNormalization(name="hidden_bn", dtype=self.dtype_policy)
        self.gating = (SEContextGating(self.gating_reduction, self.excite_bias,
                                       name="context_gating",
                                       dtype=self.dtype_policy)
                       if self.gating_reduction else None)

    def build(self, input_shape):
        total = sum(int(s[-1]) for s in input_shape)
        self.dense.build((None, total))
        self.bn.build((None, self.hidden_size))
        if self.gating is not None:
            self.gating.build((None, self.hidden_size))

    def call(self, inputs, training=None):
        x = ops.concatenate(list(inputs), axis=-1) if len(inputs) > 1 else inputs[0]
        x = self.bn(self.dense(self.drop(x, training=training)), training=training)
        return self.gating(x, training=training) if self.gating is not None else x

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.hidden_size)

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "gating_reduction": self.gating_reduction, "dropout": self.dropout,
                "excite_bias": self.excite_bias}

    @classmethod
    def from_config(cls, config):
        # `.keras` files saved before `excite_bias` existed have the bias
        return cls(**{"excite_bias": True, **config})


@keras.saving.register_keras_serializable(package="videotag")
class GatedFusion(keras.layers.Layer):
    """A learned gate mixing the projected modality vectors.

    `h_m = tanh(W_m x_m)` [B, H] per modality m; gates `z = softmax_m(W_z [x_1..x_M])`
    [B, M, H] (one weight per modality and unit, summing to one over the
    modalities); output `sum_m z_m * h_m`, then SE context gating.

    Args:
        hidden_size: H.
        gating_reduction: r of the SE gating after the mix (0: none).
        excite_bias: a bias in the SE gating's excitation (see `SEContextGating`).
        dropout: rate on the inputs.
    Call args:
        inputs: a list of M >= 2 vectors [B, D_m].
        return_gates: also return the gates [B, M, H].
    Shapes:
        -> [B, H].
    """

    def __init__(self, hidden_size: int = 512, gating_reduction: int = 8, dropout: float = 0.5,
                 excite_bias: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.hidden_size = int(hidden_size)
        self.gating_reduction = int(gating_reduction)
        self.excite_bias = bool(excite_bias)
        self.dropout = float(dropout)
        self.drop = layers.Dropout(self.dropout, dtype=self.dtype_policy)
        self.gating = (SEContextGating(self.gating_reduction, self.excite_bias,
                                       name="context_gating",
                                       dtype=self.dtype_policy)
                       if self.gating_reduction else None)

    def build(self, input_shape):
        self.num_modalities = len(input_shape)
        if self.num_modalities < 2:
            raise ConfigError("gated fusion needs at least two modality vectors")
        self.projections = []
        for i, shape in enumerate(input_shape):
            dense = layers.Dense(self.hidden_size, activation="tanh", name=f"project_{i}",
                                 dtype=self.dtype_policy)
            dense.build((None, int(shape[-1])))
            self.projections.append(dense)
        total = sum(int(s[-1]) for s in input_shape)
        self.gate = layers.Dense(self.num_modalities * self.hidden_size, name="gate",
                                 dtype=self.dtype_policy)
        self.gate.build((None, total))
        if self.gating is not None:
            self.gating.build((None, self.hidden_size))

    def call(self, inputs, training=None, return_gates=False):
        inputs = [self.drop(x, training=training) for x in inputs]
        projected = ops.stack([p(x) for p, x in zip(self.projections, inputs)], axis=1)
        logits = self.gate(ops.concatenate(inputs, axis=-1))
        gates = ops.softmax(ops.reshape(logits, (-1, self.num_modalities, self.hidden_size)),
                            axis=1)
        x = ops.sum(gates * projected, axis=1)
        if self.gating is not None:
            x = self.gating(x, training=training)
        return (x, gates) if return_gates else x

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.hidden_size)

    def get_config(self):
        return {**super().get_config(), "hidden_size": self.hidden_size,
                "gating_reduction": self.gating_reduction, "dropout": self.dropout,
                "excite_bias": self.excite_bias}

    @classmethod
    def from_config(cls, config):
        # `.keras` files saved before `excite_bias` existed have the bias
        return cls(**{"excite_bias": True, **config})


@keras.saving.register_keras_serializable(package="videotag")
class TextGuidedAttention(keras.layers.Layer):
    """Attention pooling of frames steered by a text vector (seed 001).

    Additive attention (Bahdanau et al. 2015) whose query is the title:
    `v_t = W_v x_t` (frames projected to `units`), `e_t = w^T tanh(W_k x_t + W_q q)`,
    `a = softmax(e)` over the valid frames only, output `sum_t a_t v_t`. The title
    changes the weights, so frames that match it count more.

    Args:
        units: size of the projected frames and of the attention space.
    Call args:
        frames: float [B, T, D].
        text: float [B, Dq], the title vector.
        mask: bool [B, T], True for valid frames.
        return_attention: also return the weights a [B, T] (0 on padded frames).
    Shapes:
        -> [B, units].
    """

    def __init__(self, units: int = 128, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.value = layers.Dense(self.units, name="value", dtype=self.dtype_policy)
        self.key = layers.Dense(self.units, name="key", dtype=self.dtype_policy)
        self.query = layers.Dense(self.units, use_bias=False, name="query",
                                  dtype=self.dtype_policy)
        self.score = layers.Dense(1, use_bias=False, name="score", dtype=self.dtype_policy)

    def build(self, frames_shape, text_shape=None, mask_shape=None):
        dim = int(frames_shape[-1])
        self.value.build((None, None, dim))
        self.key.build((None, None, dim))
        self.query.build((None, int(text_shape[-1])))
        self.score.build((None, None, self.units))

    def call(self, frames, text, mask, return_attention=False):
        keys = self.key(frames) + ops.expand_dims(self.query(text), 1)  # [B, T, U]
        scores = ops.squeeze(self.score(ops.tanh(keys)), -1)  # [B, T]
        weights = masked_softmax(scores, mask)
        values = self.value(frames)
        pooled = ops.sum(ops.expand_dims(ops.cast(weights, values.dtype), -1) * values, axis=1)
        return (pooled, weights) if return_attention else pooled

    def compute_output_shape(self, frames_shape, text_shape=None, mask_shape=None):
        return (frames_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@dataclass
class FusionParams:
    """Parameters of the `concat_se` and `gated` fusions.

    Attributes:
        hidden_size: H, units of the fused vector.
        gating_reduction: r of the SE context gating (0: none).
        dropout: rate on the inputs.
    """

    hidden_size: int = 512
    gating_reduction: int = 8
    dropout: float = 0.5


@dataclass
class TextGuidedParams(FusionParams):
    """Parameters of the `text_guided` fusion: those of `concat_se`, and
    `attention_units`, the size of each `TextGuidedAttention`."""

    attention_units: int = 128


FUSIONS = Registry("fusion", default="concat_se")


@FUSIONS.register("concat_se", FusionParams)
def _concat_se(params: FusionParams, vectors, text, frames, mask, frame_names):
    return ConcatSEFusion(params.hidden_size, params.gating_reduction, params.dropout,
                          name="fusion")(list(vectors) + [text])


@FUSIONS.register("gated", FusionParams)
def _gated(params: FusionParams, vectors, text, frames, mask, frame_names):
    return GatedFusion(params.hidden_size, params.gating_reduction, params.dropout,
                       name="fusion")(list(vectors) + [text])


@FUSIONS.register("text_guided", TextGuidedParams)
def _text_guided(params: TextGuidedParams, vectors, text, frames, mask, frame_names):
    pooled = [TextGuidedAttention(params.attention_units, name=f"text_guided_{name}")(
        x, text, mask) for name, x in zip(frame_names, frames)]
    return _concat_se(params, list(vectors) + pooled, text, frames, mask, frame_names)


def build_fusion(fusion: Any, vectors: List, text, frames: Sequence, mask,
                 frame_names: Sequence[str], path: str = "model.fusion"):
    """Fuses the modality vectors and the title vector into one video vector [B, H].

    Args:
        fusion: a `Component` of `FUSIONS`, or its config form: "concat_se",
            "gated" or "text_guided", or a mapping of `type` and parameters
            (`FusionParams`, `TextGuidedParams`).
        vectors: the aggregated frame features, one [B, D_m] per modality.
        text: the title vector [B, Dt].
        frames: the frames of each modality [B, T, size] (for "text_guided").
        mask: the frame mask [B, T].
        frame_names: the modalities' names (layer names).
        path: the dotted config key of `fusion`, for messages.

    Raises:
        ConfigError: unknown fusion or parameter, listing the valid ones.
    """
    return FUSIONS.build(FUSIONS.read(fusion, path), vectors, text, frames, mask, frame_names)
