"""Evaluation of YouTube-8M-style video classification: exact metrics of whole arrays
(`metrics`), their streamed accumulators (`streaming` for the tags, `category` for a
category head), per-batch summaries (`summary`), model scoring (`evaluator`) and the
JSON / Markdown / PNG report (`report`)."""

from videotag.evaluation.category import CategoryEvaluator
from videotag.evaluation.metrics import (
    average_precision_per_class,
    category_top_k_accuracy,
    gap,
    hit_at_k,
    hit_at_one,
    mean_average_precision,
    perr,
    precision_recall_f1,
)
from videotag.evaluation.streaming import StreamingEvaluator
from videotag.evaluation.summary import category_ranks, summarize_batch

__all__ = [
    "CategoryEvaluator",
    "StreamingEvaluator",
    "average_precision_per_class",
    "category_ranks",
    "category_top_k_accuracy",
    "gap",
    "hit_at_k",
    "hit_at_one",
    "mean_average_precision",
    "perr",
    "precision_recall_f1",
    "summarize_batch",
]
