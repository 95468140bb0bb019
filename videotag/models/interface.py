"""Pieces every model shares: inputs, dequantization, input normalisation, frame
mask, head, outputs, batch-norm momentum.

Conventions every registered model follows (the trainer's FGM adversarial loss and
the exporter rely on them):
- raw inputs by name: each frame feature uint8 [B, T, size], `num_frames` int32 [B]
  and, with `data.use_title`, `title` string [B]; a video-level model (its config's
  `record_type` is "video") takes each mean feature float32 [B, size] instead;
- the model reaches the raw inputs only through the layers made here and by the
  title embedding: `dequantize_<feature>` (float frames [B, T, size]), `frame_mask`
  (bool [B, T]), `title_tokens`/`title_mask` and `title_embedding` (float
  [B, L, E]). Everything after them is a function of their outputs alone, so a
  model can be cut there: the outputs of `dequantize_*` and `title_embedding` are
  the perturbable tensors of FGM (the input normalisation of `model.input`, the
  layer `input_normalization`, comes after them);
- outputs by name: `tags` and/or `category` probabilities and `embedding`; a model
  trained with online distillation (MIX_NEXTVLAD) also outputs `member_logits`
  [B, M, C] and `mixture_logits` [B, C] (`DISTILLATION_OUTPUTS`), which the trainer's
  loss reads (`videotag.training.losses.loss_terms`) and serving leaves out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import keras
import numpy as np

from videotag.data import schema
from videotag.errors import ConfigError
from videotag.layers import CategoryHead, Dequantize, FrameMask, FrameNormalization, build_head

# The extra outputs of a model trained with online distillation: the members' class
# logits [B, M, C] and the mixture's [B, C].
MEMBER_LOGITS = "member_logits"
MIXTURE_LOGITS = "mixture_logits"
DISTILLATION_OUTPUTS = (MEMBER_LOGITS, MIXTURE_LOGITS)


def frame_inputs(cfg) -> Tuple[Dict[str, keras.KerasTensor], List[keras.KerasTensor], keras.KerasTensor]:
    """Model inputs for frame-level data.

    Returns:
        (inputs, frames, mask): the Keras inputs by name (uint8 features
        [B, T, size] and `num_frames` int32 [B]); the dequantized float frames of
        each feature, in `data.feature_names` order, normalised as `model.input`
        says; the bool frame mask [B, T].

    Raises:
        ConfigError: `model.input` asks for eigenvalues that cannot be read.
    """
    data = cfg.data
    inputs = {
        name: keras.Input((None, size), dtype="uint8", name=name)
        for name, size in zip(data.feature_names, data.feature_sizes)
    }
    inputs[schema.NUM_FRAMES_KEY] = keras.Input((), dtype="int32", name=schema.NUM_FRAMES_KEY)
    frames = [Dequantize(name=f"dequantize_{n}")(inputs[n]) for n in data.feature_names]
    mask = FrameMask(name="frame_mask")(frames[0], inputs[schema.NUM_FRAMES_KEY])
    mode = cfg.model.input.normalization
    if mode != "none":
        scale = eigenvalue_scale(cfg) if mode == "eigenvalues" else None
        frames = FrameNormalization(mode, scale, name="input_normalization")(frames)
    return inputs, frames, mask


def eigenvalue_scale(cfg) -> List[float]:
    """`sqrt(eigenvalue) + 1e-4` of the first feature's dimensions, from
    `model.input.eigenvalues_file` (the NeXtVLAD authors' rgb rescaling).

    Raises:
        ConfigError: no file given, unreadable, or fewer values than the first
            feature's size; the message names the key.
    """
    key = "model.input.eigenvalues_file"
    path = cfg.model.input.eigenvalues_file
    size = cfg.data.feature_sizes[0]
    if not path:
        raise ConfigError(
            f"config key '{key}' is empty: input normalization 'eigenvalues' (the NeXtVLAD "
            f"authors' rescaling of {cfg.data.feature_names[0]}) needs the eigenvals.npy of "
            "YT8M's PCA (in yt8m_pca.tgz of the YT8M feature-extraction release); or set "
            "model.input.normalization=none")
    try:
        values = np.load(Path(path)).astype(np.float64).reshape(-1)
    except (OSError, ValueError) as err:
        raise ConfigError(f"config key '{key}': cannot read {path} as a .npy array ({err})")
    if values.size < size or not np.all(np.isfinite(values)) or values.min() < 0:
        raise ConfigError(f"config key '{key}': {path} must hold at least {size} finite, "
                          f"non-negative eigenvalues (it has {values.size})")
    return list(np.sqrt(values[:size]) + 1e-4)


def set_batch_norm_momentum(model: keras.Model, momentum: Optional[float]) -> keras.Model:
    """Sets the momentum of every batch norm of `model` (nested layers included),
    `model.batch_norm_momentum`; returns the model."""
    from videotag.training.distribution import nested_layers

    if momentum is None:
        return model
    for layer in nested_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = float(momentum)
    return model


def video_inputs(cfg) -> Tuple[Dict[str, keras.KerasTensor], keras.KerasTensor]:
    """Model inputs for video-level data (mean features).

    Args:
        cfg: the run's config (`data.feature_names`, `data.feature_sizes`;
            `model.input`, the normalisation of the features as `frame_inputs`
            applies it to each frame: "l2" is the YT8M starter code's train.py,
            `tf.nn.l2_normalize(model_input_raw, feature_dim)` over all features).

    Returns:
        (inputs, features): the Keras inputs by name (each feature float32
        [B, size]) and the features, normalised as `model.input` says, concatenated
        in `data.feature_names` order [B, sum of sizes].

    Raises:
        ConfigError: `model.input` asks for eigenvalues that cannot be read.
    """
    data = cfg.data
    inputs = {name: keras.Input((size,), dtype="float32", name=name)
              for name, size in zip(data.feature_names, data.feature_sizes)}
    features = list(inputs.values())
    mode = cfg.model.input.normalization
    if mode != "none":
        scale = eigenvalue_scale(cfg) if mode == "eigenvalues" else None
        features = FrameNormalization(mode, scale, name="input_normalization")(features)
    x = (keras.layers.Concatenate(name="concat_features")(features) if len(features) > 1
         else features[0])
    return inputs, x


def video_outputs(cfg, embedding: keras.KerasTensor, tags: Optional[keras.KerasTensor] = None
                  ) -> Dict[str, keras.KerasTensor]:
    """The outputs dict of every model, from the video embedding [B, D].

    `tags` [B, num_classes] sigmoid probabilities from the configured head (or the
    model's own `tags` tensor, when given) and/or `category` [B, num_categories]
    softmax probabilities (per `model.head.tasks`), and `embedding` [B, D] float32
    (the vector the heads see).
    """
    head = cfg.model.head
    outputs = {}
    if "tags" in head.tasks:
        outputs["tags"] = (build_head(head, cfg.data.num_classes, name="tags")(embedding)
                           if tags is None else tags)
    if "category" in head.tasks:
        if cfg.data.num_categories <= 0:
            raise ConfigError("config key 'model.head.tasks' has 'category' but "
                              "'data.num_categories' is 0; set it to the number of categories")
        outputs["category"] = CategoryHead(
            cfg.data.num_categories, head.l2_penalty, name="category")(embedding)
    outputs["embedding"] = keras.layers.Identity(name="embedding", dtype="float32")(embedding)
    return outputs
