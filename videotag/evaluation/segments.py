"""The YT8M 2019 segment metric and submission, streamed: `SegmentRanking`.

The metric (the 2019 challenge's, as the starter code's `segment_eval_inference.py`
computes it from a submission): per class, the segments in ranked order, capped at
the top N (100,000), reduced to the rated (segment, class) pairs;

    AP = sum over the positive pairs of (positives so far / rank among rated pairs)
         / (positive rated pairs of the class in the whole set)

and the mean over the classes that have a positive. Unrated pairs still take their
place in the top N, but count neither way. A class with positives that ranks no
segment has AP 0 (the starter script leaves such a class out of the mean, which
rewards leaving hard classes out of a submission).

Ranked order: score descending; equal scores rank the smaller video id first, then
the earlier start time. So the figure does not depend on the order of the videos,
and a submission written from a ranking (`submission_rows`) lists its segments in
exactly that order.

Memory is bounded by the top N per class (each entry its score, video id, start and
rating: about 13 bytes with YT8M's 4-byte ids), plus one batch: never videos x
classes.
"""

from __future__ import annotations

from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

DEFAULT_TOP_N = 100_000
UNRATED = -1  # a rating: -1 unrated, 0 negative, 1 positive
# pending candidates merged into the kept top N once they are this many (or more
# than the entries kept)
_MERGE_AT = 1 << 20


class SegmentRanking:
    """The top N segments of every class, with the ratings of the pairs, streamed.

    Feed it batches of scored segments (`add_scores` for dense scores, or
    `add_candidates` for (class, score) lists such as each segment's top k); read the
    metric (`mean_ap`, `per_class_ap`, `result`) or the submission
    (`submission_rows`).

    Args:
        num_classes: class ids are in [0, num_classes); None: any id >= 0 (the
            counters grow to the largest id seen).
        top_n: the segments kept per class (N).
    """

    def __init__(self, num_classes: Optional[int] = None, top_n: int = DEFAULT_TOP_N):
        if num_classes is not None and (int(num_classes) != num_classes or num_classes < 1):
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if int(top_n) != top_n or top_n < 1:
            raise ValueError(f"top_n must be a positive integer, got {top_n!r}")
        self.fixed = num_classes is not None
        self.num_classes, self.top_n = int(num_classes or 1), int(top_n)
        self._kept = _entries(0)
        self._pending: List[Tuple[np.ndarray, ...]] = []
        self._pending_size = 0
        # a candidate below the N-th kept score of its class cannot enter
        self._floor = np.full(self.num_classes, -np.inf, np.float32)
        self._positives = np.zeros(self.num_classes, np.int64)
        self._rated = np.zeros(self.num_classes, np.int64)
        self.num_segments = 0
        self.num_videos = 0

    # --- input ------------------------------------------------------------------------

    def add_scores(self, scores, classes, video_ids, starts, ratings=None,
                   videos: int = 0) -> None:
        """Adds segments scored for a set of classes.

        Args:
            scores: float [n, c], the score of each segment for each class of `classes`.
            classes: int [c], the class id of each column.
            video_ids: bytes [n], the video of each segment.
            starts: int [n], each segment's start time.
            ratings: int [n, c]: -1 unrated, 0 negative, 1 positive; None: nothing
                rated (prediction).
            videos: the number of videos these segments belong to (for counting).

        Raises:
            ValueError: shapes that do not agree, a NaN score, a class outside
                [0, num_classes), a rating other than -1, 0 and 1.
        """
        scores = np.asarray(scores, np.float32)
        classes = self._checked(classes)
        if scores.ndim != 2 or classes.shape != (scores.shape[1],):
            raise ValueError(f"scores [n, c] and classes [c] expected, got {scores.shape} and "
                             f"{classes.shape}")
        rows, cols = np.nonzero(scores >= self._floor[classes][np.newaxis, :])
        flat = ratings
        if ratings is not None:
            ratings = np.asarray(ratings, np.int8)
            if ratings.shape != scores.shape:
                raise ValueError(f"ratings {ratings.shape} differ from scores {scores.shape}")
            flat = ratings[rows, cols]
        self.count_ratings(np.broadcast_to(classes, scores.shape), ratings)
        self._add(classes[cols], scores[rows, cols], np.asarray(video_ids)[rows],
                  np.asarray(starts)[rows], flat)
        self.num_segments += scores.shape[0]
        self.num_videos += videos

    def add_candidates(self, classes, scores, video_ids, starts, ratings=None,
                       segments: int = 0, videos: int = 0) -> None:
        """Adds (segment, class) candidates, e.g. each segment's top k classes.

        Args:
            classes: int [m] class ids; scores: float [m]; video_ids: bytes [m];
                starts: int [m]; ratings: int [m] (-1, 0, 1) or None.
            segments: the number of segments these candidates come from.
            videos: the number of videos they come from.

        The ratings of candidates are counted too (`count_ratings`): give ratings
        only when every rated pair is among the candidates.
        """
        classes = self._checked(classes)
        scores = np.asarray(scores, np.float32)
        if ratings is not None:
            ratings = np.asarray(ratings, np.int8)
            self.count_ratings(classes, ratings)
        keep = scores >= self._floor[classes]
        self._add(classes[keep], scores[keep], np.asarray(video_ids)[keep],
                  np.asarray(starts)[keep], None if ratings is None else ratings[keep])
        self.num_segments += segments
        self.num_videos += videos

    def count_ratings(self, classes, ratings) -> None:
        """Counts rated and positive pairs per class (the AP's denominators), for the
        pairs of `classes` and `ratings` (int arrays of one shape; None: none)."""
        if ratings is None:
            return
        classes, ratings = self._checked(np.asarray(classes).ravel()), np.asarray(ratings).ravel()
        if ratings.size and (ratings.min() < UNRATED or ratings.max() > 1):
            raise ValueError("ratings must be -1 (unrated), 0 or 1")
        self._rated += np.bincount(classes[ratings >= 0], minlength=self.num_classes)
        self._positives += np.bincount(classes[ratings == 1], minlength=self.num_classes)

    def _checked(self, classes) -> np.ndarray:
        """int64 class ids, checked against (or growing) the class range."""
        classes = np.asarray(classes, np.int64)
        if classes.size and classes.min() < 0:
            raise ValueError("negative class ids")
        top = int(classes.max()) + 1 if classes.size else 0
        if top > self.num_classes:
            if self.fixed:
                raise ValueError(f"class ids outside [0, {self.num_classes})")
            grow = top - self.num_classes
            self._floor = np.concatenate([self._floor, np.full(grow, -np.inf, np.float32)])
            self._positives = np.concatenate([self._positives, np.zeros(grow, np.int64)])
            self._rated = np.concatenate([self._rated, np.zeros(grow, np.int64)])
            self.num_classes = top
        return classes

    def _add(self, classes, scores, video_ids, starts, ratings) -> None:
        if classes.size == 0:
            return
        if np.isnan(scores).any():
            raise ValueError("a segment score is NaN")
        if ratings is None:
            ratings = np.full(classes.shape, UNRATED, np.int8)
        self._pending.append((classes.astype(np.int32), scores,
                              np.asarray(video_ids, dtype=bytes),
                              np.asarray(starts, np.int32), ratings.astype(np.int8)))
        self._pending_size += classes.size
        if self._pending_size > max(_MERGE_AT, self._kept[0].size):
            self._merge()

    def _merge(self) -> None:
        """Folds the pending candidates into the kept top N of each class."""
        if not self._pending:
            return
        parts = [self._kept] + self._pending
        classes, scores, ids, starts, ratings = (np.concatenate([p[i] for p in parts])
                                                 for i in range(5))
        order = np.lexsort((starts, ids, -scores, classes))
        ordered = classes[order]
        within = np.arange(order.size) - np.searchsorted(ordered, ordered, side="left")
        keep = order[within < self.top_n]
        self._kept = (ordered[within < self.top_n], scores[keep], ids[keep], starts[keep],
                      ratings[keep])
        self._pending, self._pending_size = [], 0
        kept_classes = self._kept[0]
        counts = np.bincount(kept_classes, minlength=self.num_classes)
        full = np.flatnonzero(counts >= self.top_n)
        last = np.searchsorted(kept_classes, full, side="right") - 1
        self._floor[full] = self._kept[1][last]

    # --- output -----------------------------------------------------------------------

    def ranked(self) -> Tuple[np.ndarray, ...]:
        """The kept entries (classes, scores, video ids, starts, ratings), by class,
        then in ranked order; at most `top_n` per class."""
        self._merge()
        return self._kept

    def per_class_ap(self) -> Tuple[np.ndarray, np.ndarray]:
        """(ap, positives): float64 [num_classes] AP (0 without positives) and int64
        [num_classes] positive rated pairs of each class in the whole set."""
        classes, _, _, _, ratings = self.ranked()
        rated = ratings >= 0
        classes, positive = classes[rated], ratings[rated] == 1
        ap_sum = np.zeros(self.num_classes)
        if classes.size:
            index = np.arange(classes.size)
            first = np.searchsorted(classes, classes, side="left")
            found = np.cumsum(positive, dtype=np.int64)
            found_before = np.where(first > 0, found[np.maximum(first - 1, 0)], 0)
            precision = (found - found_before) / (index - first + 1.0)
            ap_sum = np.bincount(classes, weights=np.where(positive, precision, 0.0),
                                 minlength=self.num_classes)
        positives = self._positives.copy()
        ap = np.divide(ap_sum, positives, out=np.zeros(self.num_classes), where=positives > 0)
        return ap, positives

    def mean_ap(self) -> float:
        """The segment mAP: mean AP over classes with a positive (0.0 when none)."""
        ap, positives = self.per_class_ap()
        return float(ap[positives > 0].mean()) if (positives > 0).any() else 0.0

    def result(self) -> Dict[str, float]:
        """`segment_map`, `top_n`, `num_videos`, `num_segments`, `num_rated_pairs`,
        `num_positive_pairs` and `num_classes_with_positives`."""
        return {"segment_map": self.mean_ap(), "top_n": self.top_n,
                "num_videos": self.num_videos, "num_segments": self.num_segments,
                "num_rated_pairs": int(self._rated.sum()),
                "num_positive_pairs": int(self._positives.sum()),
                "num_classes_with_positives": int(np.count_nonzero(self._positives))}

    def submission_rows(self) -> Iterator[Tuple[int, List[str]]]:
        """(class id, ["<video id>:<start>", ...] best first) of every class that ranks
        a segment, by class id: the rows of the Kaggle submission."""
        classes, _, ids, starts, _ = self.ranked()
        bounds = np.flatnonzero(np.diff(classes)) + 1
        for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [classes.size]])):
            if hi > lo:
                yield int(classes[lo]), [f"{i.decode('utf-8', 'replace')}:{s}"
                                         for i, s in zip(ids[lo:hi], starts[lo:hi])]

    def memory_bytes(self) -> int:
        """Bytes held: the kept entries, the pending candidates and the counters."""
        arrays = list(self._kept) + [a for p in self._pending for a in p] + [
            self._floor, self._positives, self._rated]
        return int(sum(a.nbytes for a in arrays))


def _entries(n: int) -> Tuple[np.ndarray, ...]:
    return (np.zeros(n, np.int32), np.zeros(n, np.float32), np.zeros(n, "S1"),
            np.zeros(n, np.int32), np.zeros(n, np.int8))


def submission_ap(rows, rated: Dict[Tuple[str, int], float], num_classes: int,
                  top_n: int = DEFAULT_TOP_N) -> Tuple[np.ndarray, np.ndarray]:
    """Per-class AP of a submission's rows against the rated pairs (the metric of
    the module docstring, on a submission as the starter's script reads it).

    Args:
        rows: (class id, ["<video id>:<start>", ...]) in the file's order.
        rated: {("<video id>:<start>", class id): score} of every rated pair.
        num_classes: class ids are in [0, num_classes).
        top_n: each class's list is cut at this many segments first.

    Returns:
        (ap, positives) as `SegmentRanking.per_class_ap`.
    """
    positives = np.zeros(num_classes, np.int64)
    for (_, cls), score in rated.items():
        positives[cls] += score > 0
    ap = np.zeros(num_classes)
    for cls, segments in rows:
        found = ranked = 0
        total = 0.0
        for segment in segments[:top_n]:
            score = rated.get((segment, cls))
            if score is None:
                continue
            ranked += 1
            if score > 0:
                found += 1
                total += found / ranked
        if positives[cls]:
            ap[cls] = total / positives[cls]
    return ap, positives
