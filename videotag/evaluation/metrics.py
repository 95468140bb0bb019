"""Exact YouTube-8M evaluation metrics: GAP@k, per-class AP / mAP, Hit@k and PERR.

Everything is vectorized numpy. The whole-array functions (`gap`, `hit_at_one`,
...) are thin wrappers over `StreamingEvaluator`, so streamed and whole-array
figures come from the same code and agree exactly whatever the batching.

Conventions shared by every metric:

* Inputs are `predictions` [videos, classes] (scores, no NaN) and multi-hot
  `labels` of the same shape (bool, or numbers that are all 0 or 1).
* Top-k of a video: its k highest scores; among equal scores the lower class
  index ranks first. With fewer than k classes, all classes are taken.
* Average precision over a pool of (score, is_positive) pairs sorted by score
  descending: equal scores form one tie group and every positive in a group
  takes the precision at the end of the group. The figure therefore does not
  depend on the order of the videos, and equals the plain formula without ties.
* Videos without labels contribute their top-k pairs (all negatives) to GAP
  and mAP and count in the Hit@k denominator, but are left out of PERR (its
  precision at n = 0 labels is undefined).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np

__all__ = [
    "StreamingEvaluator",
    "average_precision_per_class",
    "gap",
    "hit_at_k",
    "hit_at_one",
    "mean_average_precision",
    "perr",
]


def _check_batch(
    predictions, labels, num_classes: Optional[int] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """Validates one batch and returns (scores as float array, labels as bool array).

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
    num_nan = np.count_nonzero(np.isnan(scores))
    if num_nan:
        raise ValueError(f"predictions contain {num_nan} NaN score(s); scores must not be NaN")
    if labels.dtype != np.bool_:
        ones = labels == 1
        # Every non-zero label (including NaN) must be a 1.
        if np.count_nonzero(labels) != np.count_nonzero(ones):
            raise ValueError("labels must be multi-hot: every value must be 0 or 1")
        labels = ones
    return scores, labels


def _top_k(scores: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Top-k classes of every video, ranked by (score descending, class ascending).

    Args:
        scores: [videos >= 1, classes >= 1] float array without NaN.
        k: number of classes to keep per video (>= 1); capped at the classes.

    Returns:
        (classes, scores), both [videos, min(k, classes)], each row in rank order.
    """
    num_videos, num_classes = scores.shape
    kk = min(k, num_classes)
    if kk == num_classes:
        rows = np.repeat(np.arange(num_videos), num_classes)
        cls = np.tile(np.arange(num_classes), num_videos)
    else:
        # Threshold = k-th largest score per row; everything above it is in the
        # top k, and the ties at the threshold are filled in by class index.
        thr = np.partition(scores, num_classes - kk, axis=1)[:, num_classes - kk]
        rows, cls = np.nonzero(scores >= thr[:, None])  # row-major, class ascending
        if rows.size != num_videos * kk:
            at_thr = scores[rows, cls] == thr[rows]
            per_row = np.bincount(rows, minlength=num_videos)
            ties_per_row = np.bincount(rows[at_thr], minlength=num_videos)
            needed = kk - (per_row - ties_per_row)
            ties_before_row = np.cumsum(ties_per_row) - ties_per_row
            tie_rank = np.cumsum(at_thr) - 1 - ties_before_row[rows]
            keep = ~at_thr | (tie_rank < needed[rows])
            rows, cls = rows[keep], cls[keep]
    cls = cls.reshape(num_videos, kk)
    top = scores[rows.reshape(num_videos, kk), cls]
    # Stable sort keeps the ascending class order among equal scores.
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(cls, order, axis=1), np.take_along_axis(top, order, axis=1)


def _hits_in_top_n(
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
        ranked = np.take_along_axis(labels[long_rows], order, axis=1)
        cum = np.cumsum(ranked, axis=1, dtype=np.int64)
        hits[long_rows] = cum[np.arange(long_rows.size), n[long_rows] - 1]
    return hits


def _tie_group_ap_terms(
    is_positive: np.ndarray, group_start: np.ndarray, seg_first: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, np.ndarray]:
    """AP terms of tie groups inside segments of a pool sorted by score descending.

    Args:
        is_positive: [n] bool, sorted pool (by segment, then score descending).
        group_start: [n] bool, True where a new tie group (or segment) starts.
        seg_first: [n] int, index of the first item of each item's segment;
            None if the whole pool is one segment.

    Returns:
        (ends, terms): index of the last item of every tie group, and for each
        group `new positives in the group * precision at the end of the group`.
    """
    size = is_positive.shape[0]
    starts = np.flatnonzero(group_start)
    ends = np.append(starts[1:] - 1, size - 1)
    pos_cum = np.cumsum(is_positive, dtype=np.int64)
    first = seg_first[ends] if seg_first is not None else np.zeros_like(ends)
    pos_before_seg = pos_cum[first] - is_positive[first]
    pos_upto = pos_cum[ends] - pos_before_seg
    new_pos = pos_cum[ends] - pos_cum[starts] + is_positive[starts]
    precision = pos_upto / (ends - first + 1)
    return ends, new_pos * precision


class StreamingEvaluator:
    """Accumulates exact YT8M metrics over batches of videos.

    Per batch it keeps only the top-k (score, class, is_positive) triples of each
    video, plus O(classes) integer counters; the figures are exactly those of the
    whole-array functions, whatever the batch split or the order of the videos.

    Args:
        num_classes: number of classes (columns of every batch).
        top_k: k of GAP@k and of the per-class AP pools.
    """

    def __init__(self, num_classes: int, top_k: int = 20):
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if int(top_k) != top_k or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        self.num_classes = int(num_classes)
        self.top_k = int(top_k)
        self.reset()

    def reset(self) -> None:
        """Forgets every video added so far."""
        self._scores: List[np.ndarray] = []
        self._classes: List[np.ndarray] = []
        self._positive: List[np.ndarray] = []
        self._is_sorted = False
        self._num_videos = 0
        self._class_positives = np.zeros(self.num_classes, dtype=np.int64)
        self._hits_at_1 = 0
        self._hits_at_k = 0
        # PERR counters indexed by a video's label count n, so that the final sum
        # runs in a fixed order and is independent of batching.
        self._perr_hits_by_n = np.zeros(self.num_classes + 1, dtype=np.int64)
        self._videos_by_n = np.zeros(self.num_classes + 1, dtype=np.int64)

    @property
    def num_videos(self) -> int:
        """Number of videos added since construction or the last `reset`."""
        return self._num_videos

    def add(self, predictions, labels) -> None:
        """Adds one batch of videos.

        Args:
            predictions: [batch, num_classes] scores (no NaN).
            labels: [batch, num_classes] multi-hot labels (bool or 0/1 numbers).

        Raises:
            ValueError: if the shapes do not match each other or `num_classes`,
                a score is NaN or a label is not 0/1.
        """
        self._add_checked(*_check_batch(predictions, labels, self.num_classes))

    def _add_checked(self, scores: np.ndarray, labels: np.ndarray) -> None:
        """`add` for a batch already validated by `_check_batch`."""
        if scores.shape[0] == 0:
            return
        classes, top = _top_k(scores, self.top_k)
        positive = labels[np.arange(scores.shape[0])[:, None], classes]
        n = np.count_nonzero(labels, axis=1)
        hits = _hits_in_top_n(scores, labels, positive, n)
        size = self.num_classes + 1

        self._scores.append(top.astype(np.float64).ravel())
        self._classes.append(classes.astype(np.int32).ravel())
        self._positive.append(positive.ravel())
        self._is_sorted = False
        self._num_videos += scores.shape[0]
        self._class_positives += np.count_nonzero(labels, axis=0)
        self._hits_at_1 += int(np.count_nonzero(positive[:, 0]))
        self._hits_at_k += int(np.count_nonzero(positive.any(axis=1)))
        self._perr_hits_by_n += np.bincount(n, weights=hits, minlength=size).astype(np.int64)
        self._videos_by_n += np.bincount(n, minlength=size)

    def _sorted_pool(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pooled (scores, classes, is_positive), sorted by score descending."""
        if not self._is_sorted:
            scores = np.concatenate([np.zeros(0)] + self._scores)
            order = np.argsort(scores)[::-1]  # order within equal scores is irrelevant
            # The sorted pool replaces the batches: the pool order does not matter.
            self._scores = [scores[order]]
            self._classes = [np.concatenate([np.zeros(0, np.int32)] + self._classes)[order]]
            self._positive = [np.concatenate([np.zeros(0, bool)] + self._positive)[order]]
            self._is_sorted = True
        return self._scores[0], self._classes[0], self._positive[0]

    def gap(self) -> float:
        """Global average precision at `top_k` of the videos added so far."""
        total = int(self._class_positives.sum())
        scores, _, positive = self._sorted_pool()
        if total == 0 or scores.size == 0:
            return 0.0
        group_start = np.empty(scores.size, dtype=bool)
        group_start[0] = True
        np.not_equal(scores[1:], scores[:-1], out=group_start[1:])
        _, terms = _tie_group_ap_terms(positive, group_start)
        return float(terms.sum() / total)

    def per_class_ap(self) -> Tuple[np.ndarray, np.ndarray]:
        """Per-class AP over the pooled top-k lists.

        Returns:
            (ap, positives): float64 [num_classes] AP (0 for classes without
            positives) and int64 [num_classes] number of videos labelled with
            each class.
        """
        positives = self._class_positives.copy()
        ap_sum = np.zeros(self.num_classes)
        scores, classes, positive = self._sorted_pool()
        if scores.size:
            # Stable sort by class keeps score-descending order within each class;
            # int16 keys let numpy use its linear-time radix sort.
            key = classes.astype(np.int16) if self.num_classes <= 2**15 else classes
            by_class = np.argsort(key, kind="stable")
            scores, classes, positive = scores[by_class], classes[by_class], positive[by_class]
            seg_start = np.empty(scores.size, dtype=bool)
            seg_start[0] = True
            np.not_equal(classes[1:], classes[:-1], out=seg_start[1:])
            group_start = seg_start.copy()
            group_start[1:] |= scores[1:] != scores[:-1]
            seg_first = np.flatnonzero(seg_start)[np.cumsum(seg_start) - 1]
            ends, terms = _tie_group_ap_terms(positive, group_start, seg_first)
            ap_sum = np.bincount(classes[ends], weights=terms, minlength=self.num_classes)
        ap = np.divide(ap_sum, positives, out=np.zeros(self.num_classes), where=positives > 0)
        return ap, positives

    def _mean_aps(self) -> Tuple[float, float]:
        """(mAP over classes with positives, mean AP over all classes)."""
        ap, positives = self.per_class_ap()
        has_positives = positives > 0
        if not has_positives.any():
            return 0.0, 0.0
        return float(ap[has_positives].mean()), float(ap.mean())

    def hit_at_1(self) -> float:
        """Fraction of videos whose top-1 class is a positive (0.0 with no videos)."""
        return self._hits_at_1 / self._num_videos if self._num_videos else 0.0

    def _hit_at_top_k(self) -> float:
        return self._hits_at_k / self._num_videos if self._num_videos else 0.0

    def perr(self) -> float:
        """Precision at equal recall rate over videos with at least one label.

        Videos without labels are excluded; 0.0 if no video has a label.
        """
        labelled = int(self._videos_by_n[1:].sum())
        if labelled == 0:
            return 0.0
        n = np.arange(1, self.num_classes + 1)
        return float(np.sum(self._perr_hits_by_n[1:] / n) / labelled)

    def result(self) -> Dict[str, float]:
        """All figures of the videos added so far.

        Returns:
            dict with "gap", "map" (mean AP over classes with positives),
            "map_all_classes" (mean AP over all classes), "hit_at_1", "perr",
            "num_videos" and "num_positives" (total positive labels).
        """
        mean_ap, mean_ap_all = self._mean_aps()
        return {
            "gap": self.gap(),
            "map": mean_ap,
            "map_all_classes": mean_ap_all,
            "hit_at_1": self.hit_at_1(),
            "perr": self.perr(),
            "num_videos": self._num_videos,
            "num_positives": int(self._class_positives.sum()),
        }


def _evaluate(predictions, labels, top_k: int) -> StreamingEvaluator:
    """A StreamingEvaluator fed with the whole arrays as one batch."""
    scores, labels = _check_batch(predictions, labels)
    evaluator = StreamingEvaluator(scores.shape[1], top_k)
    evaluator._add_checked(scores, labels)
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
    return _evaluate(predictions, labels, k)._hit_at_top_k()


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
    return _evaluate(predictions, labels, top_k)._mean_aps()[0]
