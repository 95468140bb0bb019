"""Evaluation of YouTube-8M-style video classification: exact streamed metrics
(`metrics`), per-batch summaries (`summary`), model scoring (`evaluator`) and the
JSON / Markdown / PNG report (`report`)."""

from videotag.evaluation.metrics import (
    CategoryEvaluator,
    StreamingEvaluator,
    average_precision_per_class,
    category_accuracy,
    gap,
    hit_at_k,
    hit_at_one,
    mean_average_precision,
    perr,
    precision_recall_f1,
)
from videotag.evaluation.summary import category_ranks, summarize_batch

__all__ = [
    "CategoryEvaluator",
    "StreamingEvaluator",
    "average_precision_per_class",
    "category_accuracy",
    "category_ranks",
    "gap",
    "hit_at_k",
    "hit_at_one",
    "mean_average_precision",
    "perr",
    "precision_recall_f1",
    "summarize_batch",
]
