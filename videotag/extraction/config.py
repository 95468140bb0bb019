"""Settings of feature extraction from raw videos, stored beside the records.

`tools/extract_features.py` writes the settings it used to `<output_dir>/extraction.yaml`;
`tools/predict.py --videos` reads that file back, so videos are predicted from the
features the model was trained on. A rerun into the same folder must use the same
settings (see `check_compatible`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from videotag.config import engine
from videotag.errors import ConfigError

CONFIG_FILE = "extraction.yaml"
SAMPLINGS = ("fps", "uniform")
MISSING_AUDIO = ("silence", "zeros", "error")
# Keys that change the features written: a rerun into a folder must not change them.
FEATURE_KEYS = ("feature_names", "feature_sizes", "sampling", "fps", "num_frames",
                "max_frames", "backbone", "backbone_weights", "image_size", "pca",
                "audio_weights", "missing_audio", "id_key", "seed")


@dataclass
class ExtractionConfig:
    """How videos become YT8M frame-level records.

    Attributes:
        feature_names: feature lists to write; "rgb" (image CNN) and/or "audio"
            (VGGish), in record order.
        feature_sizes: bytes per frame of each feature (the PCA output size):
            1024 rgb and 128 audio as in YT8M.
        sampling: "fps" (one frame every 1/fps seconds from the start, at most
            max_frames) or "uniform" (num_frames frames at the centres of equal
            segments of the whole video, as VideoTag's 300-frame sampling).
        fps: frames per second for "fps" sampling (YT8M: 1).
        num_frames: frames per video for "uniform" sampling.
        max_frames: most frames per video for "fps" sampling (YT8M: 300).
        backbone: a `keras.applications` model name (InceptionV3 as YT8M; see
            `videotag.extraction.rgb.BACKBONES`).
        backbone_weights: "imagenet" (downloaded by Keras), a weights file of the
            backbone without its top, or "random" (untrained: tests and benchmarks).
        image_size: frames are resized to image_size x image_size; 0 means the
            backbone's own input size (299 for InceptionV3).
        batch_size: frames per CNN batch (also VGGish patches per batch).
        pca: feature name -> PCA folder (mean.npy, eigenvecs.npy, eigenvals.npy,
            YT8M release layout) or a VGGish `vggish_pca_params.npz`; "none" for no
            PCA (only when the network's size equals the feature size).
        audio_weights: VGGish weights: a Keras weights file of
            `videotag.extraction.audio.build_vggish`, the released VGGish TF
            checkpoint (`vggish_model.ckpt`), or "random" (untrained).
        missing_audio: a video without an audio track gets "silence" (the features
            of a silent track, as for the silent padding of a short track),
            "zeros" (the zero vector after PCA, i.e. the mean audio frame, quantized)
            or fails ("error"). Such videos are counted in the summary either way.
        seed: with "random" weights, the seed of their initialisation: the same seed
            gives the same untrained networks in every run, so features extracted by
            separate runs (training records, then `predict.py --videos`) match.
        id_key: context key of the video id (the file stem).
        label_file: class names to resolve label names of a manifest (any format of
            `videotag.data.labels`); integer labels need none.
        videos_per_shard: records per output shard; a shard is the unit of resuming.
        num_decoders: threads decoding videos while the CNN runs.
        prefetch: decoded videos held ahead of the CNN (memory: about
            frames x image_size^2 x 3 bytes each).
    """

    feature_names: List[str] = field(default_factory=lambda: ["rgb", "audio"])
    feature_sizes: List[int] = field(default_factory=lambda: [1024, 128])
    sampling: str = "fps"
    fps: float = 1.0
    num_frames: int = 300
    max_frames: int = 300
    backbone: str = "InceptionV3"
    backbone_weights: str = "imagenet"
    image_size: int = 0
    batch_size: int = 32
    pca: Dict[str, str] = field(default_factory=dict)
    audio_weights: str = ""
    missing_audio: str = "silence"
    seed: int = 0
    id_key: str = "id"
    label_file: str = ""
    videos_per_shard: int = 100
    num_decoders: int = 2
    prefetch: int = 4

    def size_of(self, name: str) -> int:
        """The configured frame size of feature `name`."""
        return self.feature_sizes[self.feature_names.index(name)]

    def to_dict(self) -> Dict[str, Any]:
        """Plain dict of the settings (YAML-serialisable)."""
        return engine.to_dict(self)

    def save(self, path: str | Path) -> None:
        """Writes the settings as YAML (read back unchanged by `load`)."""
        engine.save_yaml(self, path)

    def validate(self, path: str = "extraction") -> None:
        """Checks values that types alone do not (raises ConfigError naming the key)."""
        if len(self.feature_names) != len(self.feature_sizes) or not self.feature_names:
            raise ConfigError(f"config keys '{path}.feature_names' and '{path}.feature_sizes' "
                              "must be non-empty and of the same length")
        unknown = set(self.feature_names) - {"rgb", "audio"}
        if unknown or len(set(self.feature_names)) != len(self.feature_names):
            raise ConfigError(f"config key '{path}.feature_names' is {self.feature_names}: "
                              "each of 'rgb' and 'audio' at most once")
        engine.check_choice(f"{path}.sampling", self.sampling, SAMPLINGS)
        engine.check_choice(f"{path}.missing_audio", self.missing_audio, MISSING_AUDIO)
        engine.check_positive(path, self, ("num_frames", "max_frames", "batch_size",
                                           "videos_per_shard", "num_decoders", "prefetch", "fps"))
        if any(s <= 0 for s in self.feature_sizes):
            raise ConfigError(f"config key '{path}.feature_sizes' must hold positive sizes")
        engine.check_positive(path, self, ("image_size",), strict=False)
        unknown = set(self.pca) - set(self.feature_names)
        if unknown:
            raise ConfigError(f"config key '{path}.pca.{sorted(unknown)[0]}': not one of the "
                              f"features {self.feature_names}")


def load(path: Optional[str] = None, overrides: Sequence[str] = ()) -> ExtractionConfig:
    """Settings from defaults, a YAML file and `key=value` overrides.

    Raises:
        ConfigError: unknown key, wrong type or invalid value, naming the key.
    """
    import tensorflow as tf

    raw: Dict[str, Any] = {}
    if path:
        if not tf.io.gfile.exists(str(path)):
            raise ConfigError(f"extraction config not found: {path}")
        raw = engine.read_yaml(path)
    engine.apply_overrides(raw, list(overrides))
    return engine.build(ExtractionConfig, raw, "extraction")


def check_compatible(cfg: ExtractionConfig, folder: str | Path) -> None:
    """Fails when `folder` holds records extracted with other feature settings.

    Raises:
        ConfigError: a key of `FEATURE_KEYS` differs, naming it and both values.
    """
    import tensorflow as tf

    file = f"{str(folder).rstrip('/')}/{CONFIG_FILE}"
    if not tf.io.gfile.exists(file):
        return
    previous = load(file)
    for key in FEATURE_KEYS:
        old, new = getattr(previous, key), getattr(cfg, key)
        if old != new:
            raise ConfigError(
                f"{folder} holds features extracted with {key}={old!r}, this run has "
                f"{key}={new!r}: use another output folder (or the same settings)"
            )
