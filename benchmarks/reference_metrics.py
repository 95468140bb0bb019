"""A straightforward implementation of the YT8M metrics, the baseline of eval_metrics.py.

It follows the algorithm of the YT8M starter code, written here from the definitions
of SPEC.md: for each video, a heap of its top 20 classes whose (score, is positive)
pairs go to one global list and to per-class lists; at the end, a global sort and a
Python loop per list. Ties follow SPEC.md: within a video the lower class index ranks
first, and in a pool every positive of a tie group takes the precision at the group's
end, so the figures match videotag's exactly (not only when scores are distinct).

Two ways to find a video's top 20, same results:
* `preselect=False`: the heap runs over all of the video's (score, class) pairs, in
  Python (the algorithm as stated, "slow pure Python");
* `preselect=True`: numpy first keeps the classes scoring at least the 20th largest
  score (what the starter code's per-video argpartition does), and the heap orders
  those few: a stronger baseline.

    ref = ReferenceMetrics(num_classes=3862, top_k=20)
    for scores, labels in batches:          # numpy [batch, classes]
        ref.add(scores, labels)
    ref.result()  # {"gap", "map", "hit_at_1", "perr"}
"""

from __future__ import annotations

import heapq

import numpy as np


def _top_classes(row: np.ndarray, n: int, preselect: bool) -> list:
    """The n best classes of one video, by (score descending, class ascending)."""
    size = row.shape[0]
    if preselect and n < size:
        # Every class scoring at least the n-th largest score: the top n plus ties.
        kth = np.partition(row, size - n)[size - n]
        candidates = np.flatnonzero(row >= kth).tolist()
        pairs = zip((-row[candidates]).tolist(), candidates)
    else:
        pairs = zip((-row).tolist(), range(size))
    # (-score, class) tuples: the smallest are the highest scores, lower class first.
    return [c for _, c in heapq.nsmallest(n, pairs)]


def _average_precision(pairs: list, num_positives: int) -> float:
    """AP of (score, is_positive) pairs; a tie group's positives share its end precision."""
    if num_positives == 0:
        return 0.0
    pairs.sort(key=lambda p: -p[0])
    total, found, i = 0.0, 0, 0
    while i < len(pairs):
        j, group = i, 0
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            group += pairs[j][1]
            j += 1
        found += group
        total += group * (found / j)
        i = j
    return total / num_positives


class ReferenceMetrics:
    """GAP@k, mAP (classes with positives), Hit@1 and PERR, video by video."""

    def __init__(self, num_classes: int, top_k: int = 20, preselect: bool = False):
        self.num_classes = num_classes
        self.top_k = top_k
        self.preselect = preselect
        self.pool = []
        self.per_class = [[] for _ in range(num_classes)]
        self.class_positives = [0] * num_classes
        self.num_videos = 0
        self.hits_at_1 = 0
        self.perr_sum = 0.0
        self.labelled = 0

    def add(self, scores: np.ndarray, labels: np.ndarray) -> None:
        for row, label_row in zip(scores, labels):
            positives = set(np.flatnonzero(label_row).tolist())
            top = _top_classes(row, self.top_k, self.preselect)
            for c in top:
                pair = (float(row[c]), c in positives)
                self.pool.append(pair)
                self.per_class[c].append(pair)
            for c in positives:
                self.class_positives[c] += 1
            self.num_videos += 1
            self.hits_at_1 += top[0] in positives
            n = len(positives)
            if n:
                best = top[:n] if n <= len(top) else _top_classes(row, n, self.preselect)
                self.perr_sum += sum(c in positives for c in best) / n
                self.labelled += 1

    def result(self) -> dict:
        total_positives = sum(self.class_positives)
        aps = [
            _average_precision(self.per_class[c], self.class_positives[c])
            for c in range(self.num_classes)
            if self.class_positives[c]
        ]
        return {
            "gap": _average_precision(self.pool, total_positives),
            "map": sum(aps) / len(aps) if aps else 0.0,
            "hit_at_1": self.hits_at_1 / self.num_videos if self.num_videos else 0.0,
            "perr": self.perr_sum / self.labelled if self.labelled else 0.0,
        }
