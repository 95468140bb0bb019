"""The YouTube-8M record schema and its quantization.

Frame-level records are `tf.train.SequenceExample`s: context `id` (bytes; key
configurable), `labels` (int64 list) and optional `title` (bytes, UTF-8) and
`category` (int64); feature lists `rgb` (1024 bytes per frame) and `audio` (128 bytes
per frame). Video-level records are `tf.train.Example`s with `id`, `labels`,
`mean_rgb` float[1024] and `mean_audio` float[128].
"""

import numpy as np

MAX_QUANTIZED = 255.0
MIN_VALUE = -2.0
MAX_VALUE = 2.0
# x = q * SCALE + BIAS, the YT8M dequantization (range about [-2, 2]).
SCALE = (MAX_VALUE - MIN_VALUE) / MAX_QUANTIZED  # 4 / 255
BIAS = (MAX_VALUE - MIN_VALUE) / 512.0 + MIN_VALUE  # 4 / 512 - 2

LABELS_KEY = "labels"
TITLE_KEY = "title"
CATEGORY_KEY = "category"
NUM_FRAMES_KEY = "num_frames"
VIDEO_ID_KEY = "video_id"  # name of the id in parsed batches, whatever the record key


def dequantize(q: np.ndarray) -> np.ndarray:
    """uint8 codes -> float32 features: `q * 4/255 + 4/512 - 2`."""
    return (np.asarray(q, np.float32) * np.float32(SCALE) + np.float32(BIAS)).astype(
        np.float32
    )


def quantize(x: np.ndarray) -> np.ndarray:
    """float features -> uint8 codes: `round((clip(x, -2, 2) + 2) * 255 / 4)`."""
    x = np.clip(np.asarray(x, np.float64), MIN_VALUE, MAX_VALUE)
    return np.round((x - MIN_VALUE) * MAX_QUANTIZED / (MAX_VALUE - MIN_VALUE)).astype(
        np.uint8
    )
