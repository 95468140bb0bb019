"""The streamed top-k accuracy of a multi-class category head, `CategoryEvaluator`
(the category's counterpart of `videotag.evaluation.streaming.StreamingEvaluator`)."""

from __future__ import annotations

from typing import Dict

import numpy as np

from videotag.evaluation.summary import category_ranks

__all__ = ["CategoryEvaluator"]


class CategoryEvaluator:
    """Top-1 / top-5 accuracy of a multi-class (softmax) category head, streamed.

    Keeps one counter per rank: memory O(num_categories). Videos without a
    category (id -1) are counted apart and left out of the accuracy.

    Args:
        num_categories: number of categories (columns of the category scores).
    """

    def __init__(self, num_categories: int):
        if int(num_categories) != num_categories or num_categories < 1:
            raise ValueError(f"num_categories must be a positive integer, got {num_categories!r}")
        self.num_categories = int(num_categories)
        self.reset()

    def reset(self) -> None:
        """Forgets every video added so far."""
        self._rank_counts = np.zeros(self.num_categories, dtype=np.int64)
        self._without_category = 0

    @property
    def num_videos(self) -> int:
        """Videos with a category added so far."""
        return int(self._rank_counts.sum())

    def add(self, scores, categories) -> None:
        """Adds [batch, num_categories] scores and [batch] int ids (-1: none).

        Raises:
            ValueError: shapes, NaN scores, or an id >= num_categories.
        """
        scores = np.asarray(scores)
        if scores.ndim != 2 or scores.shape[1] != self.num_categories:
            raise ValueError(
                f"category scores have shape {scores.shape}, expected [batch, "
                f"{self.num_categories}]"
            )
        self.add_ranks(category_ranks(scores, categories))

    def add_ranks(self, ranks) -> None:
        """Adds [batch] ranks of the true categories (0 = top; -1: no category)."""
        ranks = np.asarray(ranks).astype(np.int64).ravel()
        if ranks.size and (ranks.min() < -1 or ranks.max() >= self.num_categories):
            raise ValueError(f"category ranks must lie in [-1, {self.num_categories})")
        self._without_category += int(np.count_nonzero(ranks < 0))
        self._rank_counts += np.bincount(ranks[ranks >= 0], minlength=self.num_categories)

    def accuracy(self, k: int = 1) -> float:
        """Fraction of videos whose category is among their k top-scoring ones."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        total = self.num_videos
        return float(self._rank_counts[:k].sum() / total) if total else 0.0

    def result(self) -> Dict[str, float]:
        """`category_top1`, `category_top5`, `num_category_videos` and
        `num_videos_without_category`."""
        return {
            "category_top1": self.accuracy(1),
            "category_top5": self.accuracy(5),
            "num_category_videos": self.num_videos,
            "num_videos_without_category": self._without_category,
        }
