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
    """Multi-scale temporal relation network. [B, T, D] -> [B, hidden_size].

    `n = segments` ordered frames are taken from the valid frames (one per equal
    segment: random in training, the middle in inference; see `sampling.py`) and,
    with `frame_size`, projected to that size. For each scale k = n, ..., 2:
    `T_k = h_k(sum over tuples of g_k([f_i1, ..., f_ik]))` over ordered k-frame
    tuples i1 < ... < ik of the n frames, where g_k and h_k are one-layer ReLU MLPs;
    scale n has one tuple, the others use `subsample` of their tuples: drawn at
    random per video in training, a fixed evenly spaced set in inference (so
    evaluation and serving are deterministic). The output is `sum_k T_k`.

    Frame order matters (the tuples concatenate frames in time order); padding does
    not (the sampled positions depend only on the number of valid frames).

    Args:
        segments: n, the frames sampled per video (>= 2).
        subsample: tuples per scale below n.
        frame_size: size of the per-frame projection (0: no projection).
        bottleneck: units of g_k.
        hidden_size: units of h_k, the output size.
        seed: seed of the training draws (None: from the global seed).
    """

    def __init__(self, segments=8, subsample=3, frame_size=256, bottleneck=256,
                 hidden_size=256, seed=None, **kwargs):
        super().__init__(**kwargs)
        if segments < 2:
            raise ValueError(f"TRN needs at least 2 segments, got {segments}")
        self.segments = segments
        self.subsample = subsample
        self.frame_size = frame_size
        self.bottleneck = bottleneck
        self.hidden_size = hidden_size
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True
        self.scales = list(range(segments, 1, -1))
        self.tuples = {k: relation_tuples(segments, k) for k in self.scales}
        self.counts = {k: min(subsample, len(t)) if k < segments else 1
                       for k, t in self.tuples.items()}

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
            h = layers.Dense(self.hidden_size, activation="relu", name=f"h_{k}",
                             dtype=self.dtype_policy)
            h.build((None, self.bottleneck))
            self.g.append(g)
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
        if self.project is not None:
            frames = self.project(frames)
        size = ops.shape(frames)[-1]
        out = 0.0
        for k, g, h in zip(self.scales, self.g, self.h):
            m = self.counts[k]
            index = self._tuples(k, batch, training)  # [B or 1, m, k]
            index = ops.reshape(ops.broadcast_to(index, (batch, m, k)), (batch, m * k))
            relation = ops.reshape(gather_frames(frames, index), (batch, m, k * size))
            pooled = ops.sum(g(relation), axis=1)  # [B, bottleneck]
            out = out + h(pooled)
        return out

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.hidden_size)

    def get_config(self):
        return {
            **super().get_config(),
            "segments": self.segments,
            "subsample": self.subsample,
            "frame_size": self.frame_size,
            "bottleneck": self.bottleneck,
            "hidden_size": self.hidden_size,
            "seed": self.seed,
        }
