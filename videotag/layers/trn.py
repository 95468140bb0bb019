"""Multi-scale temporal relations (TRN; Zhou et al., ECCV 2018, arXiv 1711.08496)."""

import itertools

import keras
import numpy as np
from keras import layers, ops

from videotag.layers.sampling import gather_frames, sample_positions


def relation_tuples(segments, scale):
    """All ordered `scale`-frame tuples of `segments` frames, int32 [M, scale]."""
    return np.asarray(list(itertools.combinations(range(segments), scale)), np.int32)


def evenly_spaced(total, count):
    """`count` distinct indices spread evenly over range(total) (the inference tuples)."""
    return [int((j + 0.5) * total / count) for j in range(count)]


@keras.saving.register_keras_serializable(package="videotag")
class TemporalRelation(keras.layers.Layer):
    """Multi-scale temporal relation network (the `RelationModuleMultiScale` of the
    authors' TRN-pytorch, TRNmodule.py). [B, T, D] -> [B, output size].

    `n = segments` ordered frames are taken from the valid frames (one per equal
    segment: random in training, the middle in inference; see `sampling.py`); in
    training `dropout` drops their features; with `frame_size` they are projected
    to that size (the authors' `new_fc`), then, with `input_relu`, passed through a
    ReLU (the first layer of the authors' per-scale MLP). For each scale k = n, ..., 2
    the ordered k-frame tuples i1 < ... < ik of the n frames are concatenated and
    mapped by `g_k` (dense `bottleneck`, ReLU) and summed: `S_k = sum_tuples g_k`.
    Scale n has one tuple, the others use `subsample` of their tuples: drawn at
    random per video in training, a fixed evenly spaced set in inference (so
    evaluation and serving are deterministic).

    The output, with `hidden_size` 0, is the concatenation `[S_n, ..., S_2]`: the
    authors' last per-scale layer is linear (`h_k`, to the classes) and their
    output the sum of `h_k` over tuples and scales, which is one linear map of this
    concatenation, the head. With `hidden_size` > 0 (videotag 0.1's form) each
    scale has `T_k = relu(S_k H_k + b_k)` of that size and the output is `sum_k T_k`.

    Frame order matters (the tuples concatenate frames in time order); padding does
    not (the sampled positions depend only on the number of valid frames).

    Args:
        segments: n, the frames sampled per video (>= 2).
        subsample: tuples per scale below n.
        frame_size: size of the per-frame projection (0: no projection).
        bottleneck: units of g_k.
        hidden_size: 0 (the concatenation above) or the units of h_k.
        dropout: dropout rate on the sampled frames, before the projection.
        input_relu: ReLU on the (projected) frames before g_k.
        seed: seed of the training draws (None: from the global seed).
    """

    def __init__(self, segments=8, subsample=3, frame_size=256, bottleneck=256,
                 hidden_size=0, dropout=0.0, input_relu=True, seed=None, **kwargs):
        super().__init__(**kwargs)
        if segments < 2:
            raise ValueError(f"TRN needs at least 2 segments, got {segments}")
        self.segments = segments
        self.subsample = subsample
        self.frame_size = frame_size
        self.bottleneck = bottleneck
        self.hidden_size = hidden_size
        self.dropout = float(dropout)
        self.input_relu = bool(input_relu)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.scales = list(range(segments, 1, -1))
        self.tuples = {k: relation_tuples(segments, k) for k in self.scales}
        self.counts = {k: min(subsample, len(t)) if k < segments else 1
                       for k, t in self.tuples.items()}
        self.drop = layers.Dropout(self.dropout, seed=seed, dtype=self.dtype_policy)

    def build(self, input_shape):
        size = int(input_shape[-1])
        self.project = None
        if self.frame_size:
            self.project = layers.Dense(self.frame_size, name="project", dtype=self.dtype_policy)
            self.project.build((None, None, size))
            size = self.frame_size
        self.g, self.h = [], []  # one per scale, in the order of self.scales
        for k in self.scales:
            g = layers.Dense(self.bottleneck, activation="relu", name=f"g_{k}",
                             dtype=self.dtype_policy)
            g.build((None, None, k * size))
            self.g.append(g)
            if self.hidden_size:
                h = layers.Dense(self.hidden_size, activation="relu", name=f"h_{k}",
                                 dtype=self.dtype_policy)
                h.build((None, self.bottleneck))
                self.h.append(h)

    def _tuples(self, k, batch, training):
        """Frame indices [B, m, k] (training) or [1, m, k] (inference) of scale k."""
        table = self.tuples[k]
        m = self.counts[k]
        if not training or m == len(table):
            chosen = table[evenly_spaced(len(table), m)]
            return ops.convert_to_tensor(chosen[None], "int32")
        draws = keras.random.uniform((batch, len(table)), seed=self.seed_generator)
        picked = ops.top_k(draws, m, sorted=False)[1]  # m distinct tuples per video
        return ops.take(ops.convert_to_tensor(table, "int32"), picked, axis=0)

    def call(self, inputs, mask=None, training=None):
        training = bool(training)
        batch = ops.shape(inputs)[0]
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], "bool")
        positions = sample_positions(mask, self.segments, training, self.seed_generator)
        frames = gather_frames(inputs, positions)  # [B, n, D], in time order
        if self.dropout:
            frames = self.drop(frames, training=training)
        if self.project is not None:
            frames = self.project(frames)
        if self.input_relu:
            frames = keras.activations.relu(frames)
        size = ops.shape(frames)[-1]
        pooled = []
        for k, g in zip(self.scales, self.g):
            m = self.counts[k]
            index = self._tuples(k, batch, training)  # [B or 1, m, k]
            index = ops.reshape(ops.broadcast_to(index, (batch, m, k)), (batch, m * k))
            relation = ops.reshape(gather_frames(frames, index), (batch, m, k * size))
            pooled.append(ops.sum(g(relation), axis=1))  # [B, bottleneck]
        if not self.hidden_size:
            return ops.concatenate(pooled, axis=-1)
        return sum(h(s) for h, s in zip(self.h, pooled))

    def output_size(self):
        """Size of the output vector."""
        return self.hidden_size or len(self.scales) * self.bottleneck

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_size())

    def get_config(self):
        return {
            **super().get_config(),
            "segments": self.segments,
            "subsample": self.subsample,
            "frame_size": self.frame_size,
            "bottleneck": self.bottleneck,
            "hidden_size": self.hidden_size,
            "dropout": self.dropout,
            "input_relu": self.input_relu,
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        # `.keras` files saved before `input_relu` existed had no ReLU there
        return cls(**{"input_relu": False, **config})
