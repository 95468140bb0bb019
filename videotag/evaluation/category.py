"""Accuracy of the `category` head (multi-class): top-1 and top-5."""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from videotag.data import schema
from videotag.data import data_errors, input_signature, list_files, make_dataset, model_inputs


def top_k_accuracy(probabilities: np.ndarray, targets: np.ndarray, k: int = 1) -> float:
    """Share of rows whose target is among their k highest probabilities.

    Ties are broken against the target (a target tied with the k-th score counts
    only if it is ranked within k by a stable sort on -score), so a constant
    prediction does not score 1.

    Args:
        probabilities: [N, C] scores.
        targets: [N] int class ids.
        k: how many top classes count.
    """
    probabilities = np.asarray(probabilities, np.float64)
    targets = np.asarray(targets, np.int64)
    if len(targets) == 0:
        return float("nan")
    target_score = probabilities[np.arange(len(targets)), targets]
    higher = (probabilities > target_score[:, None]).sum(1)
    ties_before = ((probabilities == target_score[:, None])
                   & (np.arange(probabilities.shape[1])[None] < targets[:, None])).sum(1)
    rank = higher + ties_before  # 0 for the top class
    return float(np.mean(rank < k))


def category_accuracy(model, cfg, pattern: Optional[str] = None,
                      batch_size: Optional[int] = None) -> Dict[str, float]:
    """Top-1 and top-5 accuracy of the model's `category` output on `pattern`.

    Args:
        model: a videotag model with a `category` output.
        cfg: its config (`data.num_categories` set, so records carry `category`).
        pattern: records; default `cfg.data.eval_data_pattern`.
        batch_size: default `cfg.eval.batch_size`.

    Returns:
        {"category_top1", "category_top5", "num_videos"}.
    """
    pattern = pattern or cfg.data.eval_data_pattern
    files = list_files(pattern)
    ds = make_dataset(cfg.data, pattern, batch_size or cfg.eval.batch_size, training=False)

    @tf.function(input_signature=[input_signature(cfg.data)])
    def predict(inputs):
        return model(inputs, training=False)["category"]

    probs, targets = [], []
    with data_errors(files):
        for batch in ds:
            probs.append(predict(model_inputs(cfg.data, batch)).numpy())
            targets.append(batch[schema.CATEGORY_KEY].numpy())
    probs, targets = np.concatenate(probs), np.concatenate(targets)
    return {"category_top1": top_k_accuracy(probs, targets, 1),
            "category_top5": top_k_accuracy(probs, targets, min(5, probs.shape[1])),
            "num_videos": int(len(targets))}
