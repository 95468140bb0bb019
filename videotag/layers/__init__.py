"""Keras layers of videotag, one concept per file."""

from videotag.layers.assignment import SoftAssignment
from videotag.layers.attention import AttentionClusters, AttentionPooling, masked_softmax
from videotag.layers.dbof import DBoF, SoftDBoF
from videotag.layers.frames import Dequantize, FrameMask
from videotag.layers.gating import ContextGating, LinearGating
from videotag.layers.heads import CategoryHead, LogisticHead, MoeHead, build_head
from videotag.layers.recurrent import BiLSTM, StackedLSTM
from videotag.layers.sampling import SampleFrames
from videotag.layers.trn import TemporalRelation
from videotag.layers.vlad import NetFV, NetRVLAD, NetVLAD, NeXtVLAD

__all__ = [
    "AttentionClusters",
    "AttentionPooling",
    "BiLSTM",
    "CategoryHead",
    "ContextGating",
    "DBoF",
    "Dequantize",
    "FrameMask",
    "LinearGating",
    "LogisticHead",
    "MoeHead",
    "NetFV",
    "NetRVLAD",
    "NetVLAD",
    "NeXtVLAD",
    "SampleFrames",
    "SoftAssignment",
    "SoftDBoF",
    "StackedLSTM",
    "TemporalRelation",
    "build_head",
    "masked_softmax",
]
