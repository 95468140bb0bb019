"""What one batch of videos contributes to the metrics: the batch summary.

Every metric of `videotag.evaluation` is computed from small per-batch summaries
instead of the full [videos, classes] score matrix, so that an evaluation of a
million videos holds only the top-k pairs of each video plus O(classes) counters.
A summary is a dict of arrays:

    top_classes      int   [B, kk]  each video's top-kk classes, in rank order
    top_scores       float [B, kk]  their scores (the input dtype: float32 stays)
    top_positive     bool  [B, kk]  whether each is one of the video's labels
    num_labels       int   [B]      labels of each video (n of PERR)
    perr_hits        int   [B]      positives among the video's top-n classes
    first_positive_rank int [B]     rank (from 0) of the video's best-ranked label
                                    among all its classes; C when it has none
    class_positives  int   [C]      videos labelled with each class
    true_positives   int   [C]      videos with score >= threshold and the label
    false_positives  int   [C]      videos with score >= threshold, no label

with kk = min(top_k, C). PERR needs the top-n classes of a video with n labels,
which may exceed kk: the summary carries the hit count, not the ranking. Hit@k
for any k (beyond kk too) needs only the rank of the first label, which the summary
carries for the same reason.

This module computes summaries with numpy from whole arrays (tests, benchmarks,
users holding predictions in memory). `videotag.evaluation.evaluator` computes the
same summary with TensorFlow inside the model's predict step, so only these small
arrays leave the device.

Ranking rule, shared by both: a video's classes are ranked by score descending and,
among equal scores, by class index ascending.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

SUMMARY_KEYS = (
    "top_classes",
    "top_scores",
    "top_positive",
    "num_labels",
    "perr_hits",
    "first_positive_rank",
    "class_positives",
    "true_positives",
    "false_positives",
)


def check_batch(
    predictions, labels, num_classes: Optional[int] = None, check_nan: bool = True
) -> Tuple[np.ndarray, np.ndarray]:
    """Validates one batch and returns (scores as float array, labels as bool array).

    Args:
        predictions: [videos, classes] scores.
        labels: [videos, classes] multi-hot labels.
        num_classes: if given, the number of columns the batch must have.
        check_nan: look for NaN scores (`top_k` finds them on its own, faster).

    Raises:
        ValueError: on non-2-D inputs, shape mismatches, NaN scores or labels
            other than 0/1.
    """
    scores = np.asarray(predictions)
    labels = np.asarray(labels)
    if scores.ndim != 2 or labels.ndim != 2:
        raise ValueError(
            "predictions and labels must be 2-D [videos, classes]; got predictions "
            f"of shape {scores.shape} and labels of shape {labels.shape}"
        )
    if scores.shape != labels.shape:
        raise ValueError(
            f"predictions have shape {scores.shape} but labels have shape "
            f"{labels.shape}; they must be equal [videos, classes]"
        )
    if scores.shape[1] == 0:
        raise ValueError("predictions and labels must have at least one class (column)")
    if num_classes is not None and scores.shape[1] != num_classes:
        raise ValueError(
            f"predictions and labels have {scores.shape[1]} classes but the "
            f"evaluator was built for num_classes={num_classes}"
        )
    if scores.dtype.kind in "iub":
        scores = scores.astype(np.float64)
    elif scores.dtype.kind != "f":
        raise ValueError(f"predictions must be real numbers, got dtype {scores.dtype}")
    elif scores.dtype.itemsize < 4:
        scores = scores.astype(np.float32)  # float16: exact in float32
    if check_nan:
        _raise_if_nan(scores)
    if labels.dtype != np.bool_:
        ones = labels == 1
        # Every non-zero label (including NaN) must be a 1.
        if np.count_nonzero(labels) != np.count_nonzero(ones):
            raise ValueError("labels must be multi-hot: every value must be 0 or 1")
        labels = ones
    return scores, labels


def _raise_if_nan(scores: np.ndarray) -> None:
    num_nan = np.count_nonzero(np.isnan(scores))
    if num_nan:
        raise ValueError(f"predictions contain {num_nan} NaN score(s); scores must not be NaN")


def threshold_for(dtype, threshold: float):
    """The threshold as a scalar of `dtype` such that `scores >= it` is exactly
    `scores >= threshold` compared in real numbers (float32 scores are then
    compared without upcasting the whole array)."""
    dtype = np.dtype(dtype)
    t = dtype.type(threshold)
    if float(t) < threshold:  # rounded down: the next representable value up
        t = np.nextafter(t, dtype.type(np.inf))
    return t


def top_k(scores: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k classes of every video, ranked by (score descending, class ascending).

    Args:
        scores: [videos >= 1, classes >= 1] float array without NaN.
        k: number of classes to keep per video (>= 1); capped at the classes.

    Returns:
        (classes, scores), both [videos, min(k, classes)], each row in rank order.

    Raises:
        ValueError: a score is NaN (found without a pass of its own: partitioning
            puts NaN last, so any NaN of a row lands in its top k).
    """
    num_videos, num_classes = scores.shape
    kk = min(k, num_classes)
    if kk == num_classes:
        _raise_if_nan(scores)
        cls = np.broadcast_to(np.arange(num_classes), scores.shape)
        top = scores
    else:
        # The k-th largest score of each row (the threshold): everything above it
        # is in the top k, and the ties at the threshold are filled in by class
        # index. flatnonzero is much faster than a 2-D nonzero.
        part = np.partition(scores, num_classes - kk, axis=1)[:, num_classes - kk:]
        if np.isnan(part).any():
            _raise_if_nan(scores)
        thr = part.min(axis=1)
        flat = np.flatnonzero(scores >= thr[:, None])  # row-major, class ascending
        rows = flat // num_classes
        cls = flat - rows * num_classes
        if flat.size != num_videos * kk:
            at_thr = scores[rows, cls] == thr[rows]
            per_row = np.bincount(rows, minlength=num_videos)
            ties_per_row = np.bincount(rows[at_thr], minlength=num_videos)
            needed = kk - (per_row - ties_per_row)
            ties_before_row = np.cumsum(ties_per_row) - ties_per_row
            tie_rank = np.cumsum(at_thr) - 1 - ties_before_row[rows]
            keep = ~at_thr | (tie_rank < needed[rows])
            rows, cls = rows[keep], cls[keep]
        top = scores[rows, cls].reshape(num_videos, kk)
        cls = cls.reshape(num_videos, kk)
    # Stable sort keeps the ascending class order among equal scores.
    order = np.argsort(-top, axis=1, kind="stable")
    rows = np.arange(num_videos)[:, None]
    return cls[rows, order], top[rows, order]


def hits_in_top_n(
    scores: np.ndarray, labels: np.ndarray, ranked_positive: np.ndarray, n: np.ndarray
) -> np.ndarray:
    """Number of positives among each video's top-n classes (n = its label count).

    Args:
        scores: [videos, classes] scores.
        labels: [videos, classes] bool labels.
        ranked_positive: [videos, kk] bool, is-positive of the ranked top-kk.
        n: [videos] int, number of labels of each video (may exceed kk).

    Returns:
        [videos] int64 counts; 0 where n == 0.
    """
    kk = ranked_positive.shape[1]
    hits = np.zeros(n.shape[0], dtype=np.int64)
    short = (n >= 1) & (n <= kk)
    # The top n is a prefix of the ranked top kk when n <= kk.
    cum = np.cumsum(ranked_positive, axis=1, dtype=np.int64)
    hits[short] = cum[short, n[short] - 1]
    long_rows = np.flatnonzero(n > kk)
    if long_rows.size:
        # Rare with YT8M-like data: rank the full rows of these videos only.
        order = np.argsort(-scores[long_rows], axis=1, kind="stable")
        ranked = labels[long_rows[:, None], order]
        cum = np.cumsum(ranked, axis=1, dtype=np.int64)
        hits[long_rows] = cum[np.arange(long_rows.size), n[long_rows] - 1]
    return hits


def first_positive_ranks(scores: np.ndarray, labels: np.ndarray,
                         ranked_positive: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Rank (from 0, by the ranking rule) of each video's best-ranked label; the
    number of classes for a video without labels.

    Args:
        scores: [videos, classes] scores.
        labels: [videos, classes] bool labels.
        ranked_positive: [videos, kk] bool, is-positive of the ranked top-kk.
        n: [videos] int, number of labels of each video.

    Returns:
        [videos] int64 ranks.
    """
    num_classes = scores.shape[1]
    found = ranked_positive.any(axis=1)
    ranks = np.where(found, ranked_positive.argmax(axis=1), num_classes).astype(np.int64)
    rows = np.flatnonzero(~found & (n > 0))
    if rows.size:  # the first label lies beyond the top kk: rank these rows in full
        row_scores, row_labels = scores[rows], labels[rows]
        best = np.where(row_labels, row_scores, -np.inf).max(axis=1)[:, None]
        best_class = (row_labels & (row_scores == best)).argmax(axis=1)[:, None]
        before = (row_scores > best) | (
            (row_scores == best) & (np.arange(num_classes)[None, :] < best_class))
        ranks[rows] = np.count_nonzero(before, axis=1)
    return ranks


def summarize_batch(
    predictions, labels, top_k_: int = 20, threshold: float = 0.5,
    num_classes: Optional[int] = None,
) -> Dict[str, np.ndarray]:
    """The summary (see the module docstring) of one batch of whole arrays.

    Args:
        predictions: [batch, classes] scores (no NaN).
        labels: [batch, classes] multi-hot labels (bool or 0/1 numbers).
        top_k_: k of the top-k pool (GAP@k, per-class AP, Hit@k).
        threshold: a class is predicted when its score is >= threshold
            (compared exactly, as real numbers).
        num_classes: if given, the number of columns the batch must have.

    Returns:
        The summary dict; class counters are int64.

    Raises:
        ValueError: bad shapes, NaN scores, labels other than 0/1.
    """
    scores, labels = check_batch(predictions, labels, num_classes, check_nan=False)
    num_videos, num_classes = scores.shape
    kk = min(top_k_, num_classes)
    if num_videos == 0:
        zeros = np.zeros(num_classes, np.int64)
        return {
            "top_classes": np.zeros((0, kk), np.int32),
            "top_scores": np.zeros((0, kk), scores.dtype),
            "top_positive": np.zeros((0, kk), bool),
            "num_labels": np.zeros(0, np.int64),
            "perr_hits": np.zeros(0, np.int64),
            "first_positive_rank": np.zeros(0, np.int64),
            "class_positives": zeros,
            "true_positives": zeros,
            "false_positives": zeros,
        }
    classes, top = top_k(scores, top_k_)
    positive = labels[np.arange(num_videos)[:, None], classes]
    # Labels are sparse (~3 per video on YT8M); a flat nonzero is the fast one.
    flat = np.flatnonzero(labels)
    rows = flat // num_classes
    cols = flat - rows * num_classes
    n = np.bincount(rows, minlength=num_videos)
    hits = hits_in_top_n(scores, labels, positive, n)
    class_positives = np.bincount(cols, minlength=num_classes)
    t = threshold_for(scores.dtype, threshold)
    tp = np.bincount(cols[scores[rows, cols] >= t], minlength=num_classes)
    # Predicted classes per class. Where a video's k-th score is below the
    # threshold, every score at or above it is in the video's top k: count there,
    # and scan full rows only for the other videos.
    top_predicted = top >= t
    predicted = np.bincount(classes[top_predicted], minlength=num_classes)
    if kk < num_classes:
        full = np.flatnonzero(top[:, -1] >= t)
        if full.size:
            predicted -= np.bincount(classes[full][top_predicted[full]], minlength=num_classes)
            predicted += np.add.reduce(scores[full] >= t, axis=0, dtype=np.int64)
    return {
        "top_classes": classes.astype(np.int32),
        "top_scores": top,
        "top_positive": positive,
        "num_labels": n.astype(np.int64),
        "perr_hits": hits,
        "first_positive_rank": first_positive_ranks(scores, labels, positive, n),
        "class_positives": class_positives.astype(np.int64),
        "true_positives": tp.astype(np.int64),
        "false_positives": (predicted - tp).astype(np.int64),
    }


def category_ranks(scores, categories) -> np.ndarray:
    """Rank of each video's true category among its category scores.

    Args:
        scores: [videos, num_categories] scores (e.g. softmax probabilities).
        categories: [videos] int category ids; a negative id means the video has
            no category.

    Returns:
        [videos] int64: 0 when the true category scores highest, ...; ties rank
        the lower category id first (the top-k rule of the tag metrics); -1 for
        videos without a category.

    Raises:
        ValueError: bad shapes, NaN scores, or an id >= num_categories.
    """
    scores = np.asarray(scores)
    categories = np.asarray(categories)
    if scores.ndim != 2 or categories.ndim != 1 or categories.shape[0] != scores.shape[0]:
        raise ValueError(
            "category scores must be [videos, num_categories] and categories [videos]; got "
            f"{scores.shape} and {categories.shape}"
        )
    if categories.dtype.kind not in "iu":
        raise ValueError(f"categories must be integers, got dtype {categories.dtype}")
    if np.isnan(scores).any():
        raise ValueError("category scores contain NaN")
    num_categories = scores.shape[1]
    if categories.size and categories.max() >= num_categories:
        raise ValueError(
            f"category id {int(categories.max())} is outside [0, {num_categories})"
        )
    has = categories >= 0
    cat = np.where(has, categories, 0)
    true = scores[np.arange(scores.shape[0]), cat][:, None]
    before = (scores > true) | ((scores == true) & (np.arange(num_categories) < cat[:, None]))
    return np.where(has, np.count_nonzero(before, axis=1), -1).astype(np.int64)
