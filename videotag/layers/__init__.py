"""Keras layers of videotag, one concept per file."""

from videotag.layers.frames import Dequantize, FrameMask
from videotag.layers.fusion import ConcatSEFusion, GatedFusion, TextGuidedAttention, build_fusion
from videotag.layers.gating import ContextGating
from videotag.layers.heads import CategoryHead, HmcHead, LogisticHead, MoeHead, build_head
from videotag.layers.text import BiLSTMEncoder, TextCNN, TitleTokenizer, TokenMask, build_text_encoder
from videotag.layers.vlad import NeXtVLAD

__all__ = [
    "BiLSTMEncoder",
    "CategoryHead",
    "ConcatSEFusion",
    "ContextGating",
    "Dequantize",
    "FrameMask",
    "GatedFusion",
    "HmcHead",
    "LogisticHead",
    "MoeHead",
    "NeXtVLAD",
    "TextCNN",
    "TextGuidedAttention",
    "TitleTokenizer",
    "TokenMask",
    "build_fusion",
    "build_head",
    "build_text_encoder",
]
