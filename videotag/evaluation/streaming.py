"""The streamed accumulator of the exact YouTube-8M tag metrics, `StreamingEvaluator`:
GAP@k, per-class AP / mAP, Hit@k, PERR, precision / recall / F1 at a threshold.

Everything is vectorized numpy over batch summaries (`videotag.evaluation.summary`):
the accumulators hold each video's top-k (score, class, is positive) triples plus
O(classes) integer counters, never a [videos, classes] matrix. The whole-array
functions of `videotag.evaluation.metrics` (`gap`, `hit_at_one`, ...) feed the same
accumulators with one batch, so
streamed and whole-array figures come from the same code and agree exactly whatever
the batching or the order of the videos.

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
* A class is predicted at threshold t when its score is >= t. Micro precision,
  recall and F1 pool the counts of all classes; macro ones average the per-class
  figures over the classes with at least one positive (as mAP does). A class
  with nothing predicted has precision 0; F1 = 2 TP / (2 TP + FP + FN), 0 if that
  is 0 / 0.
* Sums are taken in float64 over integer counts, in an order fixed by the sorted
  pool or the class index, so results do not depend on the batching.
"""

from __future__ import annotations

from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from videotag.evaluation.summary import SUMMARY_KEYS, summarize_batch

__all__ = ["StreamingEvaluator"]


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


def _ratio(num, den) -> np.ndarray:
    """num / den elementwise in float64, 0 where den == 0."""
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros(np.broadcast(num, den).shape), where=den > 0)


class StreamingEvaluator:
    """Accumulates the exact tag metrics over batches of videos.

    Memory: each video's top-k (score, class, is positive) triples (about 7 bytes
    each with float32 scores) and O(classes) integer counters; the figures are
    exactly those of the whole-array functions, whatever the batch split or the
    order of the videos.

    Feed it either whole arrays (`add`) or summaries computed elsewhere
    (`add_summary`, e.g. by TensorFlow inside a model's predict step).

    Args:
        num_classes: number of classes (columns of every batch).
        top_k: k of GAP@k, of the per-class AP pools and of `hit_at_k`.
        threshold: score at or above which a class counts as predicted, for
            precision / recall / F1.
        hit_at: the k of the `hit_at_<k>` figures of `result()` (any k >= 1,
            beyond `top_k` too; 1 is always there).
    """

    def __init__(self, num_classes: int, top_k: int = 20, threshold: float = 0.5,
                 hit_at: Sequence[int] = (1,)):
        if int(num_classes) != num_classes or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if int(top_k) != top_k or top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {top_k!r}")
        if not np.isfinite(threshold):
            raise ValueError(f"threshold must be a finite number, got {threshold!r}")
        if any(int(k) != k or k < 1 for k in hit_at):
            raise ValueError(f"hit_at must hold positive integers, got {list(hit_at)!r}")
        self.hit_ks = sorted({1, *(int(k) for k in hit_at)})
        self.num_classes = int(num_classes)
        self.top_k = int(top_k)
        self.threshold = float(threshold)
        # kk: the top-k actually kept per video (all classes when there are fewer).
        self.kept = min(self.top_k, self.num_classes)
        self._class_dtype = np.int16 if self.num_classes <= 2**15 else np.int32
        self.reset()

    def reset(self) -> None:
        """Forgets every video added so far."""
        self._scores: List[np.ndarray] = []
        self._classes: List[np.ndarray] = []
        self._positive: List[np.ndarray] = []
        self._is_sorted = False
        self._num_videos = 0
        size = self.num_classes
        self._class_positives = np.zeros(size, dtype=np.int64)
        self._true_positives = np.zeros(size, dtype=np.int64)
        self._false_positives = np.zeros(size, dtype=np.int64)
        # Videos by the rank of their best-ranked label (index num_classes: none).
        self._first_rank = np.zeros(size + 1, dtype=np.int64)
        # PERR counters indexed by a video's label count n, so that the final sum
        # runs in a fixed order and is independent of batching.
        self._perr_hits_by_n = np.zeros(size + 1, dtype=np.int64)
        self._videos_by_n = np.zeros(size + 1, dtype=np.int64)

    @property
    def num_videos(self) -> int:
        """Number of videos added since construction or the last `reset`."""
        return self._num_videos

    def memory_bytes(self) -> int:
        """Bytes held by the accumulated state (top-k triples and counters)."""
        arrays = self._scores + self._classes + self._positive + [
            self._class_positives, self._true_positives, self._false_positives,
            self._first_rank, self._perr_hits_by_n, self._videos_by_n]
        return int(sum(a.nbytes for a in arrays))

    def add(self, predictions, labels) -> None:
        """Adds one batch of whole arrays.

        Args:
            predictions: [batch, num_classes] scores (no NaN).
            labels: [batch, num_classes] multi-hot labels (bool or 0/1 numbers).

        Raises:
            ValueError: if the shapes do not match each other or `num_classes`,
                a score is NaN or a label is not 0/1.
        """
        self.add_summary(
            summarize_batch(predictions, labels, self.top_k, self.threshold, self.num_classes)
        )

    def add_summary(self, summary: Mapping[str, np.ndarray]) -> None:
        """Adds the summary of one batch (see `videotag.evaluation.summary`).

        The summary must have been computed with this evaluator's `top_k` and
        `threshold`.

        Raises:
            ValueError: a key is missing or an array has the wrong shape or values.
        """
        missing = [k for k in SUMMARY_KEYS if k not in summary]
        if missing:
            raise ValueError(f"batch summary lacks {missing}")
        s = {k: np.asarray(summary[k]) for k in SUMMARY_KEYS}
        classes, scores, positive = s["top_classes"], s["top_scores"], s["top_positive"]
        batch = classes.shape[0] if classes.ndim == 2 else -1
        shapes = {
            "top_classes": (batch, self.kept), "top_scores": (batch, self.kept),
            "top_positive": (batch, self.kept), "num_labels": (batch,), "perr_hits": (batch,),
            "first_positive_rank": (batch,),
            "class_positives": (self.num_classes,), "true_positives": (self.num_classes,),
            "false_positives": (self.num_classes,),
        }
        for key, shape in shapes.items():
            if s[key].shape != shape:
                raise ValueError(
                    f"batch summary '{key}' has shape {s[key].shape}, expected {shape} "
                    f"(num_classes={self.num_classes}, top_k={self.top_k})"
                )
        if batch == 0:
            return
        if classes.min() < 0 or classes.max() >= self.num_classes:
            raise ValueError(f"batch summary 'top_classes' holds ids outside [0, {self.num_classes})")
        if np.isnan(scores).any():
            raise ValueError("batch summary 'top_scores' holds NaN scores")
        n = s["num_labels"].astype(np.int64)
        hits = s["perr_hits"].astype(np.int64)
        if n.min() < 0 or n.max() > self.num_classes or (hits > n).any() or hits.min() < 0:
            raise ValueError("batch summary 'num_labels' / 'perr_hits' out of range")
        ranks = s["first_positive_rank"].astype(np.int64)
        if ranks.min() < 0 or ranks.max() > self.num_classes:
            raise ValueError("batch summary 'first_positive_rank' out of range")
        positive = positive.astype(bool)
        if scores.dtype.kind != "f" or scores.dtype.itemsize < 4:
            scores = scores.astype(np.float64 if scores.dtype.kind != "f" else np.float32)

        self._scores.append(scores.ravel())
        self._classes.append(classes.astype(self._class_dtype).ravel())
        self._positive.append(positive.ravel())
        self._is_sorted = False
        self._num_videos += batch
        self._class_positives += s["class_positives"].astype(np.int64)
        self._true_positives += s["true_positives"].astype(np.int64)
        self._false_positives += s["false_positives"].astype(np.int64)
        self._first_rank += np.bincount(ranks, minlength=self.num_classes + 1)
        size = self.num_classes + 1
        self._perr_hits_by_n += np.bincount(n, weights=hits, minlength=size).astype(np.int64)
        self._videos_by_n += np.bincount(n, minlength=size)

    def _sorted_pool(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The pooled (scores, classes, is_positive), sorted by score descending."""
        if not self._is_sorted:
            scores = np.concatenate([np.zeros(0, np.float32)] + self._scores)
            order = np.argsort(scores)[::-1]  # order within equal scores is irrelevant
            # The sorted pool replaces the batches: the pool order does not matter.
            self._scores = [scores[order]]
            self._classes = [np.concatenate([np.zeros(0, self._class_dtype)] + self._classes)[order]]
            self._positive = [np.concatenate([np.zeros(0, bool)] + self._positive)[order]]
            self._is_sorted = True
        return self._scores[0], self._classes[0], self._positive[0]

    def _pool_groups(self) -> Tuple[np.ndarray, np.ndarray]:
        """(sorted is_positive, tie-group starts) of the pool."""
        scores, _, positive = self._sorted_pool()
        group_start = np.empty(scores.size, dtype=bool)
        if scores.size:
            group_start[0] = True
            np.not_equal(scores[1:], scores[:-1], out=group_start[1:])
        return positive, group_start

    def gap(self) -> float:
        """Global average precision at `top_k` of the videos added so far."""
        total = int(self._class_positives.sum())
        positive, group_start = self._pool_groups()
        if total == 0 or positive.size == 0:
            return 0.0
        _, terms = _tie_group_ap_terms(positive, group_start)
        return float(terms.sum() / total)

    def pr_curve(self) -> Tuple[np.ndarray, np.ndarray]:
        """Precision-recall curve of the pooled top-k pairs (the curve under GAP).

        Returns:
            (recall, precision) float64 arrays, one point at the end of every tie
            group of the pool sorted by score descending; recall divides by all
            positive labels (so it may stop short of 1). Empty without pairs.
        """
        total = int(self._class_positives.sum())
        positive, group_start = self._pool_groups()
        if positive.size == 0:
            return np.zeros(0), np.zeros(0)
        ends = np.append(np.flatnonzero(group_start)[1:] - 1, positive.size - 1)
        found = np.cumsum(positive, dtype=np.int64)[ends]
        return _ratio(found, total), found / (ends + 1.0)

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
            by_class = np.argsort(classes, kind="stable")
            scores, classes, positive = scores[by_class], classes[by_class], positive[by_class]
            seg_start = np.empty(scores.size, dtype=bool)
            seg_start[0] = True
            np.not_equal(classes[1:], classes[:-1], out=seg_start[1:])
            group_start = seg_start.copy()
            group_start[1:] |= scores[1:] != scores[:-1]
            seg_first = np.flatnonzero(seg_start)[np.cumsum(seg_start) - 1]
            ends, terms = _tie_group_ap_terms(positive, group_start, seg_first)
            ap_sum = np.bincount(classes[ends], weights=terms, minlength=self.num_classes)
        return _ratio(ap_sum, positives), positives

    def mean_aps(self) -> Tuple[float, float]:
        """(mAP over classes with positives, mean AP over all classes); (0.0, 0.0)
        when no class has a positive."""
        ap, positives = self.per_class_ap()
        has_positives = positives > 0
        if not has_positives.any():
            return 0.0, 0.0
        return float(ap[has_positives].mean()), float(ap.mean())

    def hit_at(self, k: int) -> float:
        """Fraction of videos with a positive among their top k classes.

        Args:
            k: any k >= 1 (not bounded by `top_k`: the summaries carry the rank of
                each video's best-ranked label).

        Returns:
            Hit@k; 0.0 with no videos.
        """
        if k < 1:
            raise ValueError(f"Hit@{k} needs k >= 1")
        if not self._num_videos:
            return 0.0
        return float(self._first_rank[: min(k, self.num_classes)].sum() / self._num_videos)

    def hit_at_1(self) -> float:
        """Fraction of videos whose top-1 class is a positive (0.0 with no videos)."""
        return self.hit_at(1)

    def perr(self) -> float:
        """Precision at equal recall rate over videos with at least one label.

        Videos without labels are excluded; 0.0 if no video has a label.
        """
        labelled = int(self._videos_by_n[1:].sum())
        if labelled == 0:
            return 0.0
        n = np.arange(1, self.num_classes + 1)
        return float(np.sum(self._perr_hits_by_n[1:] / n) / labelled)

    def class_counts(self) -> Dict[str, np.ndarray]:
        """int64 [num_classes] counts at the threshold: `true_positives`,
        `false_positives`, `false_negatives` and `positives` (labelled videos)."""
        return {
            "true_positives": self._true_positives.copy(),
            "false_positives": self._false_positives.copy(),
            "false_negatives": self._class_positives - self._true_positives,
            "positives": self._class_positives.copy(),
        }

    def per_class_prf(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """float64 [num_classes] (precision, recall, F1) at the threshold."""
        tp, fp = self._true_positives, self._false_positives
        fn = self._class_positives - tp
        return _ratio(tp, tp + fp), _ratio(tp, tp + fn), _ratio(2 * tp, 2 * tp + fp + fn)

    def precision_recall_f1(self) -> Dict[str, float]:
        """Micro and macro precision, recall and F1 at the threshold.

        Returns:
            dict with `precision_micro`, `recall_micro`, `f1_micro`,
            `precision_macro`, `recall_macro`, `f1_macro` (macro: over classes
            with at least one positive; all 0.0 when there is none).
        """
        tp = int(self._true_positives.sum())
        fp = int(self._false_positives.sum())
        fn = int(self._class_positives.sum()) - tp
        result = {
            "precision_micro": float(_ratio(tp, tp + fp)),
            "recall_micro": float(_ratio(tp, tp + fn)),
            "f1_micro": float(_ratio(2 * tp, 2 * tp + fp + fn)),
        }
        has_positives = self._class_positives > 0
        for name, values in zip(("precision", "recall", "f1"), self.per_class_prf()):
            result[f"{name}_macro"] = float(values[has_positives].mean()) if has_positives.any() else 0.0
        return result

    def result(self) -> Dict[str, float]:
        """All figures of the videos added so far.

        Returns:
            dict with "gap", "map" (mean AP over classes with positives),
            "map_all_classes" (mean AP over all classes), "hit_at_1" and
            "hit_at_<k>" for each k of `hit_at`, "hit_at_k" (Hit@top_k), "perr", the micro and macro precision /
            recall / F1 at the threshold, "top_k", "threshold", "num_videos",
            "num_positives" (total positive labels) and
            "num_classes_with_positives".
        """
        mean_ap, mean_ap_all = self.mean_aps()
        result = {
            "gap": self.gap(),
            "map": mean_ap,
            "map_all_classes": mean_ap_all,
            **{f"hit_at_{k}": self.hit_at(k) for k in self.hit_ks},
            "hit_at_k": self.hit_at(self.top_k),
            "perr": self.perr(),
        }
        result.update(self.precision_recall_f1())
        result.update(
            top_k=self.top_k,
            threshold=self.threshold,
            num_videos=self._num_videos,
            num_positives=int(self._class_positives.sum()),
            num_classes_with_positives=int(np.count_nonzero(self._class_positives)),
        )
        return result
