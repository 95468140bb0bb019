"""Keras layers of videotag, one concept per file."""

from videotag.layers.assignment import SoftAssignment
from videotag.layers.attention import AttentionClusters, AttentionPooling
from videotag.layers.dbof import DBoF, SoftDBoF
from videotag.layers.frames import Dequantize, FrameMask, FrameNormalization
from videotag.layers.fusion import (
    ConcatSEFusion,
    GatedFusion,
    TextGuidedAttention,
    build_fusion,
)
from videotag.layers.gating import ContextGating, SEContextGating
from videotag.layers.heads import (
    CategoryHead,
    HmcHead,
    LogisticHead,
    MoeHead,
    build_head,
)
from videotag.layers.mixture import LogitMixture, MixtureWeights
from videotag.layers.normalization import MaskedBatchNormalization
from videotag.layers.ops import masked_softmax
from videotag.layers.recurrent import BiLSTM, StackedLSTM
from videotag.layers.sampling import SampleFrames
from videotag.layers.text import (
    BiLSTMEncoder,
    TextCNN,
    TitleTokenizer,
    TokenMask,
    build_text_encoder,
)
from videotag.layers.text_transformer import PresetTitleTokenizer, TransformerTitleEncoder
from videotag.layers.trn import TemporalRelation
from videotag.layers.vlad import NetFV, NetRVLAD, NetVLAD, NeXtVLAD

__all__ = [
    "AttentionClusters",
    "AttentionPooling",
    "BiLSTM",
    "BiLSTMEncoder",
    "CategoryHead",
    "ConcatSEFusion",
    "ContextGating",
    "DBoF",
    "Dequantize",
    "FrameMask",
    "FrameNormalization",
    "GatedFusion",
    "HmcHead",
    "LogisticHead",
    "LogitMixture",
    "MaskedBatchNormalization",
    "MixtureWeights",
    "MoeHead",
    "NetFV",
    "NetRVLAD",
    "NetVLAD",
    "NeXtVLAD",
    "PresetTitleTokenizer",
    "SEContextGating",
    "SampleFrames",
    "SoftAssignment",
    "SoftDBoF",
    "StackedLSTM",
    "TemporalRelation",
    "TextCNN",
    "TextGuidedAttention",
    "TitleTokenizer",
    "TokenMask",
    "TransformerTitleEncoder",
    "build_fusion",
    "build_head",
    "build_text_encoder",
    "masked_softmax",
]
