"""Exact YouTube-8M evaluation metrics of whole arrays: GAP@k, per-class AP / mAP,
Hit@k, PERR, precision / recall / F1 at a threshold, and category top-k accuracy.

Each function feeds its arrays as one batch to the streamed accumulators of
`videotag.evaluation.streaming`, so whole-array and streamed figures come from the
same code and agree exactly; the conventions every metric shares (top-k ties, tie
groups of the AP, videos without labels, thresholds) are stated there. Category
accuracy goes through `videotag.evaluation.category.CategoryEvaluator`.
"""

from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from videotag.evaluation.category import CategoryEvaluator
from videotag.evaluation.streaming import StreamingEvaluator
from videotag.evaluation.summary import check_batch, summarize_batch

__all__ = [
    "average_precision_per_class",
    "category_top_k_accuracy",
    "gap",
    "hit_at_k",
    "hit_at_one",
    "mean_average_precision",
    "perr",
    "precision_recall_f1",
]


def _evaluate(predictions, labels, top_k: int, threshold: float = 0.5) -> StreamingEvaluator:
    """A StreamingEvaluator fed with the whole arrays as one batch."""
    scores, labels = check_batch(predictions, labels)
    evaluator = StreamingEvaluator(scores.shape[1], top_k, threshold)
    evaluator.add_summary(summarize_batch(scores, labels, top_k, threshold))
    return evaluator


def gap(predictions, labels, top_k: int = 20) -> float:
    """Global average precision at k (the YouTube-8M leaderboard metric).

    Args:
        predictions: [videos, classes] scores.
        labels: [videos, classes] multi-hot labels.
        top_k: number of top-scoring classes kept per video.

    Returns:
        GAP@top_k; positives outside a video's top k still count in the
        denominator. 0.0 if there are no positive labels.
    """
    return _evaluate(predictions, labels, top_k).gap()


def hit_at_k(predictions, labels, k: int) -> float:
    """Fraction of videos with at least one positive among their top-k classes."""
    return _evaluate(predictions, labels, k).hit_at(k)


def hit_at_one(predictions, labels) -> float:
    """Fraction of videos whose top-scoring class (lower index on ties) is positive."""
    return hit_at_k(predictions, labels, 1)


def perr(predictions, labels) -> float:
    """Precision at equal recall rate, averaged over videos with at least one label.

    For a video with n labels it is the fraction of positives among its n
    highest-scoring classes (full row, lower index first on ties). Videos without
    labels are excluded; 0.0 if no video has a label.
    """
    # PERR does not depend on k; with k = 20 most videos need no full-row sort.
    return _evaluate(predictions, labels, 20).perr()


def average_precision_per_class(
    predictions, labels, top_k: int = 20
) -> Tuple[np.ndarray, np.ndarray]:
    """Per-class AP over the videos where the class is in their top-k (YT8M style).

    Returns:
        (ap, positives): float64 [classes] AP, dividing by the number of videos
        labelled with the class (0 for classes without positives), and int64
        [classes] those numbers.
    """
    return _evaluate(predictions, labels, top_k).per_class_ap()


def mean_average_precision(predictions, labels, top_k: int = 20) -> float:
    """Mean of the per-class AP@top_k over classes with at least one positive.

    Returns 0.0 if no class has a positive. `StreamingEvaluator.result()` also
    reports the mean over all classes as "map_all_classes".
    """
    return _evaluate(predictions, labels, top_k).mean_aps()[0]


def precision_recall_f1(predictions, labels, threshold: float = 0.5) -> Dict[str, float]:
    """Micro and macro precision, recall and F1 with classes predicted at score >= threshold.

    Returns:
        See `StreamingEvaluator.precision_recall_f1`.
    """
    return _evaluate(predictions, labels, 1, threshold).precision_recall_f1()


def category_top_k_accuracy(scores, categories, k: int = 1) -> float:
    """Top-k accuracy of category scores [videos, num_categories] against int ids
    [videos] (-1: no category, left out); ties rank the lower id first."""
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"category scores must be [videos, num_categories], got {scores.shape}")
    evaluator = CategoryEvaluator(scores.shape[1])
    evaluator.add(scores, categories)
    return evaluator.accuracy(k)
