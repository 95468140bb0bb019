"""Decoded videos -> quantized YT8M frame features: the networks and the PCA.

`Extractor.decode` (thread-safe, no TensorFlow) decodes a video and computes its
log-mel patches; `Extractor.features` runs the CNN and VGGish, the PCA (+ whitening)
and the quantization.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from videotag.data import schema
from videotag.errors import ConfigError, DataError
from videotag.extraction import audio as audio_lib
from videotag.extraction.config import ExtractionConfig
from videotag.extraction.decode import DecodedVideo, decode_video
from videotag.extraction.pca import Pca


@dataclass
class Decoded:
    """A decoded video with its log-mel patches (None: no audio and missing_audio=zeros)."""

    video: DecodedVideo
    patches: Optional[np.ndarray]
    no_audio: bool
    seconds: float


class Extractor:
    """Decodes videos and turns them into quantized YT8M frame features.

    Args:
        cfg: the extraction settings.
        with_pca: load the PCA of every feature (False when fitting one).
        vggish: a ready VGGish Keras model (e.g. `audio.build_vggish(width=...)` with
            loaded weights) instead of the one `cfg.audio_weights` describes.

    Raises:
        ConfigError / ModelError: bad settings, missing weights or PCA files.
    """

    def __init__(self, cfg: ExtractionConfig, with_pca: bool = True, vggish=None):
        cfg.validate()
        self.cfg = cfg
        self.rgb = self.vggish = None
        self.dims: Dict[str, int] = {}
        if with_pca:
            check_pca_settings(cfg)
        if "random" in (cfg.backbone_weights, cfg.audio_weights):
            import keras

            keras.utils.set_random_seed(cfg.seed)  # the same untrained networks every run
        if "rgb" in cfg.feature_names:
            from videotag.extraction.rgb import FrameFeatures

            _warn_if_random("rgb", cfg.backbone, cfg.backbone_weights)
            self.rgb = FrameFeatures(cfg.backbone, cfg.backbone_weights, cfg.image_size,
                                     cfg.batch_size)
            self.dims["rgb"] = self.rgb.dim
        if "audio" in cfg.feature_names:
            model = vggish
            if model is None:
                model = _build_vggish(cfg.audio_weights)
            self.vggish = _as_function(model)
            self.dims["audio"] = int(model.output_shape[-1])
        self.pca: Dict[str, Optional[Pca]] = {}
        if with_pca:
            for name in cfg.feature_names:
                self.pca[name] = _load_pca(cfg.pca[name], self.dims[name], cfg.size_of(name), name)

    @property
    def image_size(self) -> Tuple[int, int]:
        size = self.rgb.image_size if self.rgb else (self.cfg.image_size or 32,) * 2
        return size

    def decode(self, path: str) -> Decoded:
        """Decodes a video and computes its log-mel patches (thread-safe; no TF)."""
        start = time.perf_counter()
        cfg = self.cfg
        wants_audio = "audio" in cfg.feature_names
        video = decode_video(path, self.image_size, cfg.sampling, cfg.fps, cfg.num_frames,
                             cfg.max_frames, audio=wants_audio)
        patches, no_audio = None, False
        if wants_audio:
            waveform = video.waveform
            if waveform is None:
                no_audio = True
                if cfg.missing_audio == "error":
                    raise DataError(f"{path}: has no audio track (extraction key "
                                    "missing_audio=error)")
                if cfg.missing_audio == "silence":
                    waveform = np.zeros([0], np.float32)
            if waveform is not None:
                patches = audio_lib.patches_at(waveform, video.times)
        return Decoded(video, patches, no_audio, time.perf_counter() - start)

    def embed(self, decoded: Decoded) -> Dict[str, Optional[np.ndarray]]:
        """Network features before PCA: name -> float32 [T, D] (audio None: no track)."""
        out: Dict[str, Optional[np.ndarray]] = {}
        if self.rgb is not None:
            out["rgb"] = self.rgb(decoded.video.frames)
        if self.vggish is not None:
            out["audio"] = None if decoded.patches is None else _run_batched(
                self.vggish, decoded.patches, self.cfg.batch_size)
        return out

    def quantize(self, raw: Dict[str, Optional[np.ndarray]], num_frames: int) -> Dict[str, np.ndarray]:
        """PCA (+ whitening), clip to [-2, 2] and quantize: name -> uint8 [T, size]."""
        out = {}
        for name in self.cfg.feature_names:
            size = self.cfg.size_of(name)
            x = raw[name]
            if x is None:  # no audio track, missing_audio=zeros: the zero vector after PCA
                reduced = np.zeros([num_frames, size], np.float32)
            else:
                pca = self.pca[name]
                reduced = x if pca is None else pca(x)
            out[name] = schema.quantize(reduced)
        return out

    def features(self, decoded: Decoded) -> Dict[str, np.ndarray]:
        """Quantized features of a decoded video."""
        return self.quantize(self.embed(decoded), len(decoded.video.frames))


def check_pca_settings(cfg: ExtractionConfig) -> None:
    """Fails when a feature has no PCA setting (`pca.<name>`).

    Raises:
        ConfigError: naming the key.
    """
    for name in cfg.feature_names:
        if not cfg.pca.get(name):
            raise ConfigError(
                f"no PCA for '{name}' (extraction key 'pca.{name}'): fit one on your "
                "videos with videotag extract --fit_pca --pca_dir=DIR, or give "
                "the folder of mean.npy/eigenvecs.npy/eigenvals.npy files")


def _warn_if_random(what: str, network: str, weights: str) -> None:
    if weights == "random":
        print(f"warning: {what} features from an untrained {network} (random weights): "
              "fine for tests and speed measurements, useless for a model", file=sys.stderr)


def _build_vggish(weights: str):
    """The VGGish Keras model with its weights."""
    if not weights:
        raise ConfigError(
            "extraction key 'audio_weights' is empty: give the VGGish weights (the released "
            "vggish_model.ckpt or a Keras weights file), 'random' for untrained weights, "
            "or extract rgb only (feature_names=[rgb], feature_sizes=[1024])")
    _warn_if_random("audio", "VGGish", weights)
    model = audio_lib.build_vggish()
    if weights != "random":
        audio_lib.load_vggish_weights(model, weights)
    return model


def _as_function(model):
    import tensorflow as tf

    @tf.function(input_signature=[
        tf.TensorSpec([None, audio_lib.PATCH_FRAMES, audio_lib.NUM_BANDS], tf.float32)])
    def forward(patches):
        return model(patches, training=False)

    return forward


def _run_batched(forward, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    outputs = [forward(inputs[i : i + batch_size]).numpy()
               for i in range(0, len(inputs), batch_size)]
    return np.concatenate(outputs).astype(np.float32)


def _load_pca(path: str, input_dim: int, output_dim: int, name: str) -> Optional[Pca]:
    if path == "none":
        if input_dim != output_dim:
            raise ConfigError(f"extraction key 'pca.{name}' is 'none' but the network gives "
                              f"{input_dim}-d features and the records need {output_dim}")
        return None
    return Pca.load(path, input_dim, output_dim)
