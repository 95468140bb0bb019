"""Keras layers of videotag, one concept per file."""

from videotag.layers.frames import Dequantize, FrameMask
from videotag.layers.gating import ContextGating
from videotag.layers.heads import CategoryHead, LogisticHead, MoeHead, build_head
from videotag.layers.normalization import MaskedBatchNormalization
from videotag.layers.vlad import NeXtVLAD

__all__ = [
    "CategoryHead",
    "ContextGating",
    "Dequantize",
    "FrameMask",
    "LogisticHead",
    "MaskedBatchNormalization",
    "MoeHead",
    "NeXtVLAD",
    "build_head",
]
