"""Classifier heads: logistic and mixture of experts (YT8M style)."""

import keras
from keras import layers, ops, regularizers


@keras.saving.register_keras_serializable(package="videotag")
class LogisticHead(keras.layers.Layer):
    """Independent sigmoid per class (multi-label). [B, D] -> [B, num_classes]."""

    def __init__(self, num_classes, l2_penalty=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.l2_penalty = l2_penalty
        self.dense = layers.Dense(
            num_classes,
            kernel_regularizer=regularizers.L2(l2_penalty) if l2_penalty else None,
            name="logits",
        )

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        return ops.sigmoid(ops.cast(self.dense(inputs), "float32"))

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "l2_penalty": self.l2_penalty,
        }


@keras.saving.register_keras_serializable(package="videotag")
class MoeHead(keras.layers.Layer):
    """Mixture of experts per class: `sum_m softmax(gates)_m * sigmoid(expert_m)`.

    As in the YT8M starter code, the gate softmax has one extra "dummy" expert whose
    prediction is 0, so a class can be switched off.
    [B, D] -> [B, num_classes].
    """

    def __init__(self, num_classes, num_mixtures=2, l2_penalty=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.num_mixtures = num_mixtures
        self.l2_penalty = l2_penalty
        reg = regularizers.L2(l2_penalty) if l2_penalty else None
        self.gates = layers.Dense(
            num_classes * (num_mixtures + 1), kernel_regularizer=reg, name="gates"
        )
        self.experts = layers.Dense(
            num_classes * num_mixtures, kernel_regularizer=reg, name="experts"
        )

    def build(self, input_shape):
        self.gates.build(input_shape)
        self.experts.build(input_shape)

    def call(self, inputs):
        m = self.num_mixtures
        gates = ops.reshape(ops.cast(self.gates(inputs), "float32"), (-1, self.num_classes, m + 1))
        experts = ops.reshape(ops.cast(self.experts(inputs), "float32"), (-1, self.num_classes, m))
        gates = ops.softmax(gates, axis=-1)
        return ops.sum(gates[..., :m] * ops.sigmoid(experts), axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "num_mixtures": self.num_mixtures,
            "l2_penalty": self.l2_penalty,
        }


@keras.saving.register_keras_serializable(package="videotag")
class CategoryHead(keras.layers.Layer):
    """One softmax over categories (multi-class). [B, D] -> [B, num_categories]."""

    def __init__(self, num_categories, l2_penalty=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.num_categories = num_categories
        self.l2_penalty = l2_penalty
        self.dense = layers.Dense(
            num_categories,
            kernel_regularizer=regularizers.L2(l2_penalty) if l2_penalty else None,
            name="logits",
        )

    def build(self, input_shape):
        self.dense.build(input_shape)

    def call(self, inputs):
        return ops.softmax(ops.cast(self.dense(inputs), "float32"), axis=-1)

    def get_config(self):
        return {
            **super().get_config(),
            "num_categories": self.num_categories,
            "l2_penalty": self.l2_penalty,
        }


def build_head(head_cfg, num_classes, name="tags"):
    """The head a `HeadConfig` describes."""
    if head_cfg.type == "logistic":
        return LogisticHead(num_classes, head_cfg.l2_penalty, name=name)
    if head_cfg.type == "moe":
        return MoeHead(num_classes, head_cfg.num_mixtures, head_cfg.l2_penalty, name=name)
    raise ValueError(f"unknown head type '{head_cfg.type}' (valid: logistic, moe)")
