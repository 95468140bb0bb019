"""Ordered frame sampling from the valid frames of each video (DBoF, TRN).

A video's `n` valid frames (counted from the mask) are split into `S` equal segments
and one frame is taken from each (the TSN scheme, Wang et al. 2016): a random frame
of the segment in training, its middle frame in inference. The positions depend on
the frame count alone, never on the padded length, so padding cannot change which
frames are taken; they are in temporal order; and inference is deterministic.
"""

import keras
from keras import ops


def sample_positions(mask, num_samples, training=False, seed_generator=None):
    """Positions [B, S] (int32) of `num_samples` ordered frames among the valid ones.

    Args:
        mask: bool [B, T], True for valid frames (a prefix of each row).
        num_samples: S.
        training: random frame per segment when True, the segment's middle otherwise.
        seed_generator: a `keras.random.SeedGenerator` for the training draws.

    A video with fewer than S frames repeats frames; one without frames gets
    position 0 (a padded frame: callers mask such videos out).
    """
    count = ops.sum(ops.cast(mask, "float32"), axis=1, keepdims=True)  # [B, 1]
    starts = ops.cast(ops.arange(num_samples), "float32")[None, :]  # [1, S]
    if training:
        offset = keras.random.uniform(
            (ops.shape(mask)[0], num_samples), seed=seed_generator, dtype="float32")
    else:
        offset = 0.5
    positions = ops.floor((starts + offset) * count / num_samples)
    positions = ops.clip(positions, 0.0, ops.maximum(count - 1.0, 0.0))
    return ops.cast(positions, "int32")


def gather_frames(frames, positions):
    """frames [B, T, D], positions [B, S] -> [B, S, D]."""
    return ops.take_along_axis(frames, ops.expand_dims(positions, -1), axis=1)


@keras.saving.register_keras_serializable(package="videotag")
class SampleFrames(keras.layers.Layer):
    """Takes `num_samples` ordered frames per video (see the module docstring).

    Args:
        num_samples: S, the frames kept per video.
        seed: seed of the training draws (None: from the global seed).
    Call args:
        frames: float [B, T, D].
        valid: bool [B, T], the frame mask.
    Returns:
        (frames [B, S, D], mask [B, S]): the mask is True for every sample of a video
        with at least one valid frame.
    """

    def __init__(self, num_samples, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_samples = num_samples
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, frames, valid, training=None):
        positions = sample_positions(valid, self.num_samples, bool(training), self.seed_generator)
        sampled = gather_frames(frames, positions)
        has_frames = ops.any(valid, axis=1, keepdims=True)
        return sampled, ops.broadcast_to(has_frames, ops.shape(positions))

    def compute_output_shape(self, frames_shape, valid_shape):
        return ((frames_shape[0], self.num_samples, frames_shape[2]),
                (frames_shape[0], self.num_samples))

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples, "seed": self.seed}
