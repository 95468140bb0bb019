"""Evaluation metrics of YouTube-8M-style video classification."""

from videotag.evaluation.metrics import (
    StreamingEvaluator,
    average_precision_per_class,
    gap,
    hit_at_k,
    hit_at_one,
    mean_average_precision,
    perr,
)

__all__ = [
    "StreamingEvaluator",
    "average_precision_per_class",
    "gap",
    "hit_at_k",
    "hit_at_one",
    "mean_average_precision",
    "perr",
]
