"""Scoring a model on a glob of records with the streaming metrics.

On an accelerator (a GPU or TPU is visible) the evaluation step runs the model and
summarizes the batch in the same traced TensorFlow function (`predict_function`):
what leaves the device per batch is each video's top-k classes, scores and
is-positive flags, its label count and PERR hit count, and per-class counts at the
threshold (see `videotag.evaluation.summary`), never the [batch, classes] score
matrix. On a CPU the scores already are in host memory, and the step returns them:
the host summarizes them with NumPy (`summarize_on_host`, the same figures), which is
faster there than the TensorFlow summary (benchmarks/eval_metrics.py). Either way the
host accumulates the summaries with `StreamingEvaluator` (and `CategoryEvaluator` for
a `category` head).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
import re
from typing import Any, Dict, Optional, Sequence

import numpy as np
import tensorflow as tf

from videotag.data import (
    SkipCounter,
    data_errors,
    input_signature,
    list_files,
    make_dataset,
    model_inputs,
    schema,
)
from videotag.errors import DataError, ModelError
from videotag.evaluation.category import CategoryEvaluator
from videotag.evaluation.streaming import StreamingEvaluator
from videotag.evaluation.summary import summarize_batch
from videotag.progress import Progress

TAGS = "tags"
CATEGORY = "category"


def summarize_tags_tf(scores, labels, top_k, threshold) -> Dict[str, tf.Tensor]:
    """The batch summary of `videotag.evaluation.summary`, computed in TensorFlow.

    The same figures as `summarize_batch` (tests check it): `tf.math.top_k` ranks
    equal scores by lower index first, the threshold is compared exactly, and
    PERR takes a top-n with n the largest label count of the batch (at most the
    number of classes), so only these small tensors need to leave the device.

    Args:
        scores: [B, C] float tag scores.
        labels: [B, C] multi-hot labels (any real dtype; > 0 is a label).
        top_k: int32 scalar, k of the top-k pool (capped at C).
        threshold: float64 scalar; a class is predicted at score >= threshold.

    Returns:
        The summary dict (int32 counters), plus `nan_scores` (int32 scalar) so
        the caller can refuse NaN scores.
    """
    scores = tf.cast(scores, tf.float32)
    positive = labels > 0
    positive_int = tf.cast(positive, tf.int32)
    num_classes = tf.shape(scores)[1]
    n = tf.reduce_sum(positive_int, axis=1)
    kk = tf.minimum(top_k, num_classes)
    need = tf.maximum(kk, tf.reduce_max(tf.concat([n, [0]], axis=0)))
    values, classes = tf.math.top_k(scores, k=need, sorted=True)
    ranked_positive = tf.gather(positive, classes, batch_dims=1)
    within_n = tf.range(need)[tf.newaxis, :] < n[:, tf.newaxis]
    # The rank of each video's best-ranked label among all its classes (Hit@k, any k):
    # its place in the top-`need` ranking when it is there (top_k ranks equal scores
    # by lower index first, as the rank below does), else counted over the whole row,
    # for those videos only.
    found = tf.reduce_any(ranked_positive, axis=1)
    rank_in_top = tf.argmax(tf.cast(ranked_positive, tf.int32), axis=1, output_type=tf.int32)
    missing = tf.where((n > 0) & ~found)[:, 0]
    rest = tf.gather(scores, missing)
    rest_positive = tf.gather(positive, missing)
    best = tf.reduce_max(tf.where(rest_positive, rest, -float("inf")), axis=1)[:, tf.newaxis]
    index = tf.range(num_classes)[tf.newaxis, :]
    best_class = tf.reduce_min(tf.where(rest_positive & (rest == best), index, num_classes),
                               axis=1)[:, tf.newaxis]
    before = (rest > best) | ((rest == best) & (index < best_class))
    rest_rank = tf.reduce_sum(tf.cast(before, tf.int32), axis=1)
    first_rank = tf.where(found, rank_in_top, num_classes)
    first_rank = tf.tensor_scatter_nd_update(first_rank, missing[:, tf.newaxis], rest_rank)
    # The smallest float32 at or above the threshold: comparing float32 scores with
    # it is exactly `score >= threshold` in real numbers, without a float64 copy.
    threshold = tf.cast(threshold, tf.float64)
    t32 = tf.cast(threshold, tf.float32)
    t32 = tf.where(tf.cast(t32, tf.float64) < threshold,
                   tf.math.nextafter(t32, tf.constant(float("inf"))), t32)
    predicted = scores >= t32

    def count(mask, axis):
        return tf.reduce_sum(tf.cast(mask, tf.int32), axis=axis)

    true_positives = count(predicted & positive, 0)
    return {
        "top_classes": classes[:, :kk],
        "top_scores": values[:, :kk],
        "top_positive": ranked_positive[:, :kk],
        "num_labels": n,
        "perr_hits": count(ranked_positive & within_n, 1),
        "first_positive_rank": first_rank,
        "class_positives": tf.reduce_sum(positive_int, axis=0),
        "true_positives": true_positives,
        "false_positives": count(predicted, 0) - true_positives,
        "nan_scores": count(tf.math.is_nan(scores), None),
    }


def category_ranks_tf(scores, categories) -> tf.Tensor:
    """Rank of each video's category among its scores (0 = top; lower id first on
    ties; -1 where the id is negative): `summary.category_ranks` in TensorFlow."""
    scores = tf.cast(scores, tf.float32)
    num_categories = tf.shape(scores)[1]
    categories = tf.cast(categories, tf.int32)
    has = categories >= 0
    cat = tf.clip_by_value(categories, 0, num_categories - 1)
    true = tf.gather(scores, cat, batch_dims=1)[:, tf.newaxis]
    lower = tf.range(num_categories)[tf.newaxis, :] < cat[:, tf.newaxis]
    before = (scores > true) | ((scores == true) & lower)
    return tf.where(has, tf.reduce_sum(tf.cast(before, tf.int32), axis=1), -1)


def summary_on_device() -> bool:
    """Whether the evaluation step summarizes in TensorFlow: when a GPU or TPU is
    visible (saving the copy of every score to the host); on a CPU, NumPy on the host
    is faster."""
    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def summarize_on_host(scores, labels, top_k: int, threshold: float) -> Dict[str, Any]:
    """`summarize_tags_tf`'s dict from host arrays, computed by `summarize_batch`.

    Args:
        scores: [B, C] float32 tag scores (NaN allowed: counted in `nan_scores`, the
            rest of the summary is then not computed).
        labels: [B, C] multi-hot labels (> 0 is a label).
        top_k, threshold: as `summarize_tags_tf`.
    """
    try:  # summarize_batch finds a NaN score without a pass of its own
        summary: Dict[str, Any] = summarize_batch(scores, labels > 0, top_k, threshold)
    except ValueError:
        nan = int(np.count_nonzero(np.isnan(scores)))
        if not nan:
            raise
        return {"nan_scores": nan}
    summary["nan_scores"] = 0
    return summary


def predict_function(model, data_cfg, on_device: Optional[bool] = None):
    """The compiled evaluation step of `model` (inference mode).

    Args:
        model: a videotag Keras model.
        data_cfg: the config's data section.
        on_device: summarize the tags in the step (`summarize_tags_tf`); None:
            `summary_on_device()`. Otherwise the step returns the scores as
            `tag_scores` [B, C] float32 and the host summarizes them
            (`summarize_on_host`; `run_evaluation` does either).

    Returns:
        A tf.function `step(inputs, labels, categories, top_k, threshold)` with
        inputs as `model_inputs`, labels float32 [B, num_classes], categories
        int32 [B] (-1: none), top_k int32 and threshold float64 scalars. It returns
        the tag summary (or `tag_scores`) when the model has a `tags` output and
        `category_rank` int32 [B] when it has a `category` output and
        `data.num_categories > 0`. One trace serves every batch, top_k and
        threshold.

    Raises:
        ModelError: (at the first call) the model has neither output.
    """
    num_categories = getattr(data_cfg, "num_categories", 0) or 0
    on_device = summary_on_device() if on_device is None else on_device
    signature = [
        input_signature(data_cfg),
        tf.TensorSpec([None, data_cfg.num_classes], tf.float32, name="labels"),
        tf.TensorSpec([None], tf.int32, name="categories"),
        tf.TensorSpec([], tf.int32, name="top_k"),
        tf.TensorSpec([], tf.float64, name="threshold"),
    ]

    @tf.function(input_signature=signature)
    def step(inputs, labels, categories, top_k, threshold):
        outputs = model(inputs, training=False)
        summary = {}
        if TAGS in outputs and on_device:
            summary.update(summarize_tags_tf(outputs[TAGS], labels, top_k, threshold))
        elif TAGS in outputs:
            summary["tag_scores"] = tf.cast(outputs[TAGS], tf.float32)
        if CATEGORY in outputs and num_categories > 0:
            summary["category_rank"] = category_ranks_tf(outputs[CATEGORY], categories)
        if not summary:
            raise ModelError(
                f"model '{model.name}' has outputs {sorted(outputs)}: nothing to evaluate "
                f"(a '{TAGS}' output, or a '{CATEGORY}' output with data.num_categories > 0)"
            )
        return summary

    return step


@dataclass
class Evaluation:
    """The outcome of `run_evaluation`.

    Attributes:
        metrics: the flat metrics dict (what `evaluate` returns).
        tags: the tag accumulator (per-class AP, PR curve, counts), or None when
            the model has no `tags` output.
        category: the category accumulator, or None.
        pattern: the records scored.
    """

    metrics: Dict[str, Any]
    tags: Optional[StreamingEvaluator] = None
    category: Optional[CategoryEvaluator] = None
    pattern: str = ""


def run_evaluation(
    model,
    cfg,
    pattern: Optional[str] = None,
    batch_size: Optional[int] = None,
    verbose: bool = True,
    predict=None,
    top_k: Optional[int] = None,
    threshold: Optional[float] = None,
    hit_at: Optional[Sequence[int]] = None,
) -> Evaluation:
    """Scores `model` on the records of `pattern` with every metric.

    Args:
        model: a videotag Keras model.
        cfg: the run's config (data section, eval.top_k, eval.threshold).
        pattern: records to score; default `cfg.data.eval_data_pattern`.
        batch_size: default `cfg.eval.batch_size`.
        verbose: print progress to stderr.
        predict: a step from `predict_function(model, cfg.data)`, to reuse its trace.
        top_k: k of GAP@k, mAP and Hit@k; default `cfg.eval.top_k`.
        threshold: threshold of precision / recall / F1; default `cfg.eval.threshold`.
        hit_at: the k of the Hit@k figures besides Hit@top_k; default
            `cfg.eval.hit_at`. Any k: it changes neither top_k nor GAP or mAP.

    Returns:
        An `Evaluation`; its metrics hold the `StreamingEvaluator.result()` keys
        (for a `tags` output), `category_top1` / `category_top5` (for a `category`
        output, when the records hold categories), `num_videos`, `seconds` and,
        when records were skipped, `skipped_records`.

    Raises:
        DataError: bad or unreadable records (naming the file and record), or no
            record left to score.
        ModelError: the model produced NaN scores, or has nothing to evaluate.
    """
    pattern = pattern or cfg.data.eval_data_pattern
    top_k = int(top_k or cfg.eval.top_k)
    threshold = float(cfg.eval.threshold if threshold is None else threshold)
    num_categories = getattr(cfg.data, "num_categories", 0) or 0
    files = list_files(pattern)
    skips = SkipCounter() if cfg.data.on_bad_record == "skip" else None
    ds = make_dataset(
        cfg.data, pattern, batch_size or cfg.eval.batch_size, training=False, skip_counter=skips
    )
    predict = predict or predict_function(model, cfg.data)
    hit_at = list(hit_at or getattr(cfg.eval, "hit_at", None) or [1])
    tags = StreamingEvaluator(cfg.data.num_classes, top_k=top_k, threshold=threshold,
                              hit_at=hit_at)
    category = CategoryEvaluator(num_categories) if num_categories > 0 else None
    seen = {"tags": False, "category": False}
    num_videos = 0
    k_tensor = tf.constant(top_k, tf.int32)
    t_tensor = tf.constant(threshold, tf.float64)
    start = time.time()
    progress = Progress("evaluated", every=10.0 if verbose else 0)
    progress.start()
    with data_errors(files):
        for batch in ds:
            labels = batch[schema.LABELS_KEY]
            batch_videos = int(labels.shape[0])
            has_category = schema.CATEGORY_KEY in batch
            categories = (
                tf.cast(batch[schema.CATEGORY_KEY], tf.int32) if has_category
                else tf.fill([batch_videos], -1)
            )
            if has_category and num_categories:
                _check_categories(categories.numpy(), num_categories)
            out = predict(model_inputs(cfg.data, batch), labels, categories, k_tensor, t_tensor)
            # np.asarray reads a CPU tensor in place (.numpy() would copy it)
            out = {k: np.asarray(v) for k, v in out.items()}
            if "tag_scores" in out:
                out.update(summarize_on_host(out.pop("tag_scores"), np.asarray(labels), top_k,
                                             threshold))
            if "nan_scores" in out:
                if out["nan_scores"]:
                    raise ModelError(
                        f"the model produced {int(out['nan_scores'])} NaN tag scores on "
                        f"{pattern}; its weights are probably NaN (a NaN loss in training)"
                    )
                tags.add_summary(out)
                seen["tags"] = True
            if "category_rank" in out and has_category:
                category.add_ranks(out["category_rank"])
                seen["category"] = True
            num_videos += batch_videos
            progress.add(batch_videos)
    if num_videos == 0:  # every record was skipped: no figure would mean anything
        raise DataError(f"no videos to score in {pattern}"
                        + (f": every record was bad ({skips.summary()})" if skips else ""))
    metrics: Dict[str, Any] = {}
    if seen["tags"]:
        metrics.update(tags.result())
    if seen["category"]:
        metrics.update(category.result())
    metrics["num_videos"] = num_videos
    metrics["seconds"] = round(time.time() - start, 3)
    if skips is not None and skips.total():
        metrics["skipped_records"] = skips.counts()
    progress.close()
    return Evaluation(
        metrics=metrics,
        tags=tags if seen["tags"] else None,
        category=category if seen["category"] else None,
        pattern=pattern,
    )


def _check_categories(categories, num_categories: int) -> None:
    bad = categories[categories >= num_categories]
    if bad.size:
        raise DataError(
            f"category ids {sorted(set(bad.tolist()))[:5]} outside [0, {num_categories}) "
            "(check data.num_categories)"
        )


def evaluate(
    model,
    cfg,
    pattern: Optional[str] = None,
    batch_size: Optional[int] = None,
    verbose: bool = True,
    predict=None,
) -> Dict[str, Any]:
    """The metrics dict of `run_evaluation` (GAP@k, mAP, Hit@1, PERR, P/R/F1, ...);
    with `data.segment_labels`, that of the segment metric (`segment_map`, ...: see
    `videotag.evaluation.segment_scoring.run_segment_evaluation`)."""
    if getattr(cfg.data, "segment_labels", False):
        from videotag.evaluation.segment_scoring import run_segment_evaluation

        return run_segment_evaluation(model, cfg, pattern, batch_size, verbose=verbose).metrics
    return run_evaluation(model, cfg, pattern, batch_size, verbose, predict).metrics


def category_head_accuracy(model, cfg, pattern: Optional[str] = None,
                           batch_size: Optional[int] = None) -> Dict[str, Any]:
    """Top-1 and top-5 accuracy of the model's `category` output on `pattern`.

    Args:
        model: a videotag model with a `category` output.
        cfg: its config (`data.num_categories` set, so records carry `category`).
        pattern: records; default `cfg.data.eval_data_pattern`.
        batch_size: default `cfg.eval.batch_size`.

    Returns:
        {"category_top1", "category_top5", "num_videos"} (videos with a category).

    Raises:
        ModelError: the model has no `category` output, or `data.num_categories` is 0.
        DataError: bad or unreadable records.
    """
    metrics = run_evaluation(model, cfg, pattern, batch_size, verbose=False).metrics
    if "category_top1" not in metrics:
        raise ModelError(
            f"model '{model.name}' has no '{CATEGORY}' output to score, or "
            f"data.num_categories is 0 (it is {getattr(cfg.data, 'num_categories', 0)})")
    return {"category_top1": metrics["category_top1"],
            "category_top5": metrics["category_top5"],
            "num_videos": metrics["num_category_videos"]}


def hit_ks(result: Dict[str, Any]) -> list:
    """The k of the `hit_at_<k>` figures of a metrics dict, ascending."""
    found = (re.match(r"^hit_at_(\d+)$", key) for key in result)
    return sorted(int(m.group(1)) for m in found if m)


def format_metrics(result: Dict[str, Any], top_k: int = 20) -> str:
    """One line: `GAP@20 0.8123  mAP 0.5012  Hit@1 0.8421  PERR 0.7012  (1000 videos)`
    (with every Hit@k of the result, e.g. `Hit@1 0.84  Hit@2 0.91`).

    Category accuracy is appended when present; a category-only result shows it alone;
    a segment result is `segment mAP@100000 0.7012  (1000 videos, 12345 segments,
    6789 rated pairs)`.
    """
    top_k = result.get("top_k", top_k)
    parts = []
    if "segment_map" in result:
        return (f"segment mAP@{result['top_n']} {result['segment_map']:.4f}  "
                f"({int(result['num_videos'])} videos, {int(result['num_segments'])} segments, "
                f"{int(result['num_rated_pairs'])} rated pairs)")
    if "gap" in result:
        hits = "  ".join(f"Hit@{k} {result[f'hit_at_{k}']:.4f}" for k in hit_ks(result))
        parts.append(
            f"GAP@{top_k} {result['gap']:.4f}  mAP {result['map']:.4f}  "
            f"{hits}  PERR {result['perr']:.4f}"
        )
    if "category_top1" in result:
        parts.append(
            f"category top-1 {result['category_top1']:.4f}  top-5 {result['category_top5']:.4f}"
        )
    parts.append(f"({int(result['num_videos'])} videos)")
    return "  ".join(parts)
