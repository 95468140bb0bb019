"""LOGISTIC: the YT8M starter code's video-level logistic regression.

google/youtube-8m, video_level_models.py, `LogisticModel`: one sigmoid per class
over the video-level features (mean_rgb and mean_audio concatenated, L2-normalised
by train.py).
"""

from dataclasses import dataclass, field
from typing import ClassVar

import keras

from videotag.config import InputConfig, ModelConfig
from videotag.errors import ConfigError
from videotag.models.interface import video_inputs, video_outputs
from videotag.registry import register_model


@dataclass
class VideoLevelConfig(ModelConfig):
    """A classifier of video-level records (mean features), head per `head.type`.

    Attributes:
        input: the normalisation of the mean features; by default "l2", the
            concatenated features scaled to unit L2 norm before the head (the
            starter code's train.py does, for every model).
    """

    record_type: ClassVar[str] = "video"
    head_type: ClassVar[str] = "logistic"

    name: str = "LOGISTIC"
    input: InputConfig = field(default_factory=lambda: InputConfig(normalization="l2"))

    def validate(self, path: str = "model") -> None:
        """The head is the model: `head.type` must be the model's (raises ConfigError)."""
        inherited = getattr(super(), "validate", None)
        if inherited is not None:
            inherited(path)
        if self.head.type != self.head_type:
            raise ConfigError(f"config key '{path}.head.type' must be {self.head_type} for "
                              f"{self.name} (it is {self.head.type})")


def build_video_level(cfg) -> keras.Model:
    """A head over the video-level features; outputs `tags` (and `category` when
    asked) and `embedding` (the features the head sees)."""
    inputs, x = video_inputs(cfg)
    return keras.Model(inputs, video_outputs(cfg, x), name=cfg.model.name.lower())


@dataclass
class LogisticConfig(VideoLevelConfig):
    """LOGISTIC: `head.type` logistic."""


@register_model("LOGISTIC", LogisticConfig)
def build_logistic(cfg) -> keras.Model:
    """The starter code's `LogisticModel` over mean_rgb and mean_audio."""
    return build_video_level(cfg)
