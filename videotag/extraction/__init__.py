"""Raw videos -> YT8M frame-level records (seeds 002 and 003; SPEC.md "Raw videos").

Decode at one frame per second (PyAV), pooled ImageNet-CNN features of each frame
(InceptionV3 by default), PCA + whitening to 1024 and quantization; audio as 16 kHz
log-mel patches through VGGish, PCA to 128 and quantization; records with id,
title and labels. `extract` is the resumable, parallel run; `fit_pca` fits the PCA
on your own videos.
"""

from videotag.extraction.config import ExtractionConfig, load
from videotag.extraction.extractor import Extractor
from videotag.extraction.inputs import VideoItem, list_videos
from videotag.extraction.pca import Pca, PcaFitter
from videotag.extraction.pipeline import Summary, extract, fit_pca

__all__ = [
    "ExtractionConfig",
    "Extractor",
    "Pca",
    "PcaFitter",
    "Summary",
    "VideoItem",
    "extract",
    "fit_pca",
    "list_videos",
    "load",
]
