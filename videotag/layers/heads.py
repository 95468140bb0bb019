"""Classifier heads: logistic, mixture of experts (YT8M style), HMC (seed 000).

Every head returns float32 probabilities, under a mixed precision policy too: the
logits are cast to float32 before the sigmoid or softmax.
"""

import keras
from keras import initializers, layers, ops, regularizers


@keras.saving.register_keras_serializable(package="videotag")
class LogisticHead(keras.layers.Layer):
    """Independent sigmoid per class (multi-label), the YT8M starter code's
    `LogisticModel`. [B, D] -> [B, num_classes].

    Args:
        num_classes: C.
        l2_penalty: L2 of the weights (`l2_penalty * sum(w ** 2)`).
        l2_bias: regularise the bias with the same L2 (the NeXtVLAD authors'
            `LogisticModel`, linrongc/youtube-8m video_level_models.py; the starter
            code regularises the kernel only).
    """

    def __init__(self, num_classes, l2_penalty=1e-8, l2_bias=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.l2_penalty = l2_penalty
        self.l2_bias = bool(l2_bias)
        self.dense = layers.Dense(
            num_classes,
            kernel_regularizer=regularizers.L2(l2_penalty) if l2_penalty else None,
            bias_regularizer=regularizers.L2(l2_penalty) if l2_penalty and l2_bias else None,
            name="logits",
            dtype=self.dtype_policy,
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
            "l2_bias": self.l2_bias,
        }


@keras.saving.register_keras_serializable(package="videotag")
class MoeHead(keras.layers.Layer):
    """Mixture of experts per class, the YT8M starter code's `MoeModel`.

    `p_c = sum_m softmax(g_c)_m * sigmoid(e_cm)` over the M experts, where the
    gate logits `g_c = x W_g` of class c have M + 1 entries: the softmax runs over
    the M experts and one "dummy" expert whose prediction is 0, so a class can be
    switched off (google/youtube-8m, video_level_models.py, `MoeModel`: the gates
    have no bias, the experts have one; both kernels are L2-regularised).

    With `prob_gating`, the probabilities are gated as in LOUPE's `MoeModel`
    (antoine77340/Youtube-8M-WILLOW, video_level_models.py, flag
    `moe_prob_gating`, with its default input `moe_prob_gating_input=prob` and
    `gating_remove_diag=False`): `p * sigmoid(bn(p W_p))`, W_p [C, C] without
    bias or regulariser, initialised N(0, 1/C) (the context gating of the output).

    Args:
        num_classes: C.
        num_mixtures: M, experts per class (the dummy one not counted).
        l2_penalty: Keras L2 of the gate and expert kernels.
        gate_bias: give the gates a bias (videotag 0.1 did; the references do
            not). A configuration saved without this key is from before it existed
            and loads with the bias (`from_config`).
        prob_gating: gate the probabilities (LOUPE).
    Shapes:
        [B, D] -> [B, C] float32 probabilities.
    """

    def __init__(self, num_classes, num_mixtures=2, l2_penalty=1e-8, gate_bias=False,
                 prob_gating=False, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.num_mixtures = num_mixtures
        self.l2_penalty = l2_penalty
        self.gate_bias = bool(gate_bias)
        self.prob_gating = bool(prob_gating)
        reg = regularizers.L2(l2_penalty) if l2_penalty else None
        self.gates = layers.Dense(
            num_classes * (num_mixtures + 1), use_bias=self.gate_bias, kernel_regularizer=reg,
            name="gates", dtype=self.dtype_policy,
        )
        self.experts = layers.Dense(
            num_classes * num_mixtures, kernel_regularizer=reg, name="experts",
            dtype=self.dtype_policy,
        )
        if self.prob_gating:
            self.prob_gates = layers.Dense(
                num_classes, use_bias=False, name="prob_gates", dtype=self.dtype_policy,
                kernel_initializer=initializers.RandomNormal(stddev=num_classes ** -0.5))
            self.prob_gates_bn = layers.BatchNormalization(name="prob_gates_bn",
                                                           dtype=self.dtype_policy)

    @classmethod
    def from_config(cls, config):
        # videotag 0.1 saved no `gate_bias`: its gates had a bias
        return super().from_config({"gate_bias": True, **config})

    def build(self, input_shape):
        self.gates.build(input_shape)
        self.experts.build(input_shape)
        if self.prob_gating:
            self.prob_gates.build((None, self.num_classes))
            self.prob_gates_bn.build((None, self.num_classes))

    def call(self, inputs, training=None):
        m = self.num_mixtures
        gates = ops.reshape(ops.cast(self.gates(inputs), "float32"), (-1, self.num_classes, m + 1))
        experts = ops.reshape(ops.cast(self.experts(inputs), "float32"), (-1, self.num_classes, m))
        gates = ops.softmax(gates, axis=-1)
        probabilities = ops.sum(gates[..., :m] * ops.sigmoid(experts), axis=-1)
        if not self.prob_gating:
            return probabilities
        gate = self.prob_gates_bn(self.prob_gates(probabilities), training=training)
        return probabilities * ops.sigmoid(ops.cast(gate, "float32"))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "num_mixtures": self.num_mixtures,
            "l2_penalty": self.l2_penalty,
            "gate_bias": self.gate_bias,
            "prob_gating": self.prob_gating,
        }


@keras.saving.register_keras_serializable(package="videotag")
class HmcHead(keras.layers.Layer):
    """The HMC head of seed 000: a global branch and local branches, averaged.

    Seed 000 adapts the hierarchical multi-label classification network (HMCN-F,
    Wehrmann et al. 2018) to tags. Our reading of its structure:
    - global levels with dense connections: `a1 = relu(W1 x)`,
      `a2 = relu(W2 [a1, x])`, `a3 = relu(W3 [a2, a1, x])` with H, H and H/2
      units, dropout after each;
    - the global branch: `p_g = sigmoid(W_g [a3, a2, a1, x])`, every level at once;
    - a local branch per chosen level l: `p_l = sigmoid(W_pl relu(W_tl a_l))`
      (H/2 hidden units); the seed has one, at level 3 (HMCN-F has one per level);
    - the output `w * mean_l(p_l) + (1 - w) * p_g` with w = 0.5 in the seed: the
      average of the global and the local probabilities.
    The seed trains the sum of the branches' own binary cross-entropies; here the
    loss is taken on the averaged output, like the other heads (one `tags` output).

    Args:
        num_classes: C.
        hidden_size: H.
        local_levels: the levels (1, 2, 3) with a local branch.
        local_weight: w.
        dropout: rate after each hidden level.
        l2_penalty: L2 regularisation of the weights.
    Shapes:
        [B, D] -> [B, C] probabilities.
    """

    def __init__(self, num_classes, hidden_size=1024, local_levels=(3,), local_weight=0.5,
                 dropout=0.0, l2_penalty=1e-8, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.hidden_size = hidden_size
        self.local_levels = sorted({int(x) for x in local_levels})
        self.local_weight = float(local_weight)
        self.dropout = float(dropout)
        self.l2_penalty = l2_penalty
        reg = regularizers.L2(l2_penalty) if l2_penalty else None
        sizes = [hidden_size, hidden_size, max(1, hidden_size // 2)]
        self.levels = [layers.Dense(n, activation="relu", kernel_regularizer=reg,
                                    name=f"global_{i + 1}", dtype=self.dtype_policy)
                       for i, n in enumerate(sizes)]
        self.global_logits = layers.Dense(num_classes, kernel_regularizer=reg,
                                          name="global_logits", dtype=self.dtype_policy)
        # one local branch per entry of local_levels, in that order
        self.local_hidden = [layers.Dense(sizes[2], activation="relu", kernel_regularizer=reg,
                                          name=f"local_{level}", dtype=self.dtype_policy)
                             for level in self.local_levels]
        self.local_logits = [layers.Dense(num_classes, kernel_regularizer=reg,
                                          name=f"local_{level}_logits", dtype=self.dtype_policy)
                             for level in self.local_levels]
        self.drop = layers.Dropout(self.dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        width = int(input_shape[-1])
        for level in self.levels:
            level.build((None, width))
            width += level.units
        self.global_logits.build((None, width))
        for level, hidden, logits in zip(self.local_levels, self.local_hidden, self.local_logits):
            hidden.build((None, self.levels[level - 1].units))
            logits.build((None, hidden.units))

    def branches(self, inputs, training=None):
        """(global probabilities [B, C], [local probabilities [B, C] per level])."""
        stack, hidden = [inputs], []
        for level in self.levels:
            a = self.drop(level(ops.concatenate(stack[::-1], axis=-1) if len(stack) > 1
                                else stack[0]), training=training)
            hidden.append(a)
            stack.append(a)
        global_p = ops.sigmoid(ops.cast(
            self.global_logits(ops.concatenate(stack[::-1], axis=-1)), "float32"))
        local_p = []
        for level, dense, logits in zip(self.local_levels, self.local_hidden, self.local_logits):
            h = self.drop(dense(hidden[level - 1]), training=training)
            local_p.append(ops.sigmoid(ops.cast(logits(h), "float32")))
        return global_p, local_p

    def call(self, inputs, training=None):
        global_p, local_p = self.branches(inputs, training=training)
        local_mean = local_p[0] if len(local_p) == 1 else ops.mean(ops.stack(local_p), axis=0)
        return self.local_weight * local_mean + (1.0 - self.local_weight) * global_p

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "hidden_size": self.hidden_size,
            "local_levels": list(self.local_levels),
            "local_weight": self.local_weight,
            "dropout": self.dropout,
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
            dtype=self.dtype_policy,
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
        return LogisticHead(num_classes, head_cfg.l2_penalty, head_cfg.l2_bias, name=name)
    if head_cfg.type == "moe":
        return MoeHead(num_classes, head_cfg.num_mixtures, head_cfg.l2_penalty,
                       gate_bias=head_cfg.moe_gate_bias, prob_gating=head_cfg.moe_prob_gating,
                       name=name)
    if head_cfg.type == "hmc":
        return HmcHead(num_classes, head_cfg.hmc_hidden_size, head_cfg.hmc_local_levels,
                       head_cfg.hmc_local_weight, head_cfg.hmc_dropout, head_cfg.l2_penalty,
                       name=name)
    raise ValueError(f"unknown head type '{head_cfg.type}' (valid: logistic, moe, hmc)")
