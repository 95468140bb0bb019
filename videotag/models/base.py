"""Pieces every model shares: inputs, dequantization, frame mask, head, outputs."""

from __future__ import annotations

from typing import Dict, List, Tuple

import keras

from videotag.data import schema
from videotag.layers import Dequantize, FrameMask, build_head


def frame_inputs(cfg) -> Tuple[Dict[str, keras.KerasTensor], List[keras.KerasTensor], keras.KerasTensor]:
    """Model inputs for frame-level data.

    Returns:
        (inputs, frames, mask): the Keras inputs by name (uint8 features
        [B, T, size] and `num_frames` int32 [B]); the dequantized float frames of
        each feature, in `data.feature_names` order; the bool frame mask [B, T].
    """
    data = cfg.data
    inputs = {
        name: keras.Input((None, size), dtype="uint8", name=name)
        for name, size in zip(data.feature_names, data.feature_sizes)
    }
    inputs[schema.NUM_FRAMES_KEY] = keras.Input((), dtype="int32", name=schema.NUM_FRAMES_KEY)
    frames = [Dequantize(name=f"dequantize_{n}")(inputs[n]) for n in data.feature_names]
    mask = FrameMask(name="frame_mask")(frames[0], inputs[schema.NUM_FRAMES_KEY])
    return inputs, frames, mask


def video_outputs(cfg, embedding: keras.KerasTensor) -> Dict[str, keras.KerasTensor]:
    """The outputs dict: `tags` probabilities from the configured head, `embedding`."""
    tags = build_head(cfg.model.head, cfg.data.num_classes, name="tags")(embedding)
    embedding = keras.layers.Identity(name="embedding", dtype="float32")(embedding)
    return {"tags": tags, "embedding": embedding}
