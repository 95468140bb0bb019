"""Frame sampling from the valid frames of each video (DBoF, LOUPE, attention
clusters, TRN).

Two schemes, both over a video's `n` valid frames (counted from the mask):
- "segments": the frames are split into `S` equal segments and one frame is taken
  from each (the TSN scheme, Wang et al. 2016; PaddlePaddle's attention-cluster
  reader): a random frame of the segment in training, its middle frame in
  inference. The positions are in temporal order.
- "uniform": in training, `S` frames drawn independently and uniformly, with
  replacement (the YT8M starter code's `SampleRandomFrames`, which DBoF and
  LOUPE use); in inference the segment middles, as above.
The positions depend on the frame count alone, never on the padded length, so
padding cannot change which frames are taken; inference is deterministic (the
references also draw at random at evaluation).
"""

import keras
from keras import ops

SAMPLINGS = ("segments", "uniform")


def sample_positions(mask, num_samples, training=False, seed_generator=None, mode="segments"):
    """Positions [B, S] (int32) of `num_samples` frames among the valid ones.

    Args:
        mask: bool [B, T], True for valid frames (a prefix of each row).
        num_samples: S.
        training: random draws when True, the segment middles otherwise.
        seed_generator: a `keras.random.SeedGenerator` for the training draws.
        mode: "segments" or "uniform" (see the module docstring).

    A video with fewer than S frames repeats frames; one without frames gets
    position 0 (a padded frame: callers mask such videos out).
    """
    count = ops.sum(ops.cast(mask, "float32"), axis=1, keepdims=True)  # [B, 1]
    starts = ops.cast(ops.arange(num_samples), "float32")[None, :]  # [1, S]
    if training:
        offset = keras.random.uniform(
            (ops.shape(mask)[0], num_samples), seed=seed_generator, dtype="float32")
        if mode == "uniform":  # floor(u * n): independent uniform draws
            starts = 0.0 * starts
            offset = offset * num_samples
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
    """Takes `num_samples` frames per video (see the module docstring).

    Args:
        num_samples: S, the frames kept per video.
        seed: seed of the training draws (None: from the global seed).
        mode: "segments" or "uniform" (videotag 0.1 had "segments" only; its
            `.keras` files load with it).
    Call args:
        frames: float [B, T, D], or a list of such (the features of one video:
            the same positions are taken from each).
        valid: bool [B, T], the frame mask.
    Returns:
        (frames [B, S, D] or their list, mask [B, S]): the mask is True for every
        sample of a video with at least one valid frame.
    """

    def __init__(self, num_samples, seed=None, mode="uniform", **kwargs):
        super().__init__(**kwargs)
        if mode not in SAMPLINGS:
            raise ValueError(f"SampleFrames mode is '{mode}'; valid: {', '.join(SAMPLINGS)}")
        self.num_samples = num_samples
        self.seed = seed
        self.mode = mode
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, frames, valid, training=None):
        positions = sample_positions(valid, self.num_samples, bool(training),
                                     self.seed_generator, self.mode)
        if isinstance(frames, (list, tuple)):
            sampled = [gather_frames(x, positions) for x in frames]
        else:
            sampled = gather_frames(frames, positions)
        has_frames = ops.any(valid, axis=1, keepdims=True)
        return sampled, ops.broadcast_to(has_frames, ops.shape(positions))

    def compute_output_shape(self, frames_shape, valid_shape):
        def sampled(shape):
            return (shape[0], self.num_samples, shape[2])

        several = isinstance(frames_shape, (list, tuple)) and isinstance(
            frames_shape[0], (list, tuple))
        frames = [sampled(s) for s in frames_shape] if several else sampled(frames_shape)
        return frames, (valid_shape[0], self.num_samples)

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples, "seed": self.seed,
                "mode": self.mode}

    @classmethod
    def from_config(cls, config):
        # `.keras` files saved before `mode` existed sampled by segments
        return cls(**{"mode": "segments", **config})
