"""MOE: the YT8M starter code's video-level mixture of experts.

google/youtube-8m, video_level_models.py, `MoeModel` (flag `moe_num_mixtures`, 2):
per class a softmax over M logistic experts and a dummy expert predicting 0, over
the video-level features (mean_rgb and mean_audio concatenated, L2-normalised by
train.py). The head is `videotag.layers.MoeHead`.
"""

from dataclasses import dataclass, field
from typing import ClassVar

import keras

from videotag.config import HeadConfig
from videotag.models.logistic import VideoLevelConfig, build_video_level
from videotag.registry import register_model


@dataclass
class MoeConfig(VideoLevelConfig):
    """MOE: `head.type` moe (`head.num_mixtures` experts per class)."""

    head_type: ClassVar[str] = "moe"

    name: str = "MOE"
    head: HeadConfig = field(default_factory=lambda: HeadConfig(type="moe"))


@register_model("MOE", MoeConfig)
def build_moe(cfg) -> keras.Model:
    """The starter code's `MoeModel` over mean_rgb and mean_audio."""
    return build_video_level(cfg)
