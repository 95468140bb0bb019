"""Scoring a model on segment-rated records with the 2019 segment metric, and
scoring a segment submission file against them.

Every segment of every video gets the model's probabilities for the segment classes
(`videotag.data.segments.segment_probabilities`: the model on each segment's
window); `videotag.evaluation.segments.SegmentRanking` keeps the top N segments of
each class with their ratings and computes the metric. What leaves the traced step
per batch is the [segments, segment classes] probabilities of that batch only.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Dict, Optional

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
from videotag.data import segments as seg
from videotag.errors import DataError, ModelError
from videotag.evaluation.segments import DEFAULT_TOP_N, UNRATED, SegmentRanking, submission_ap
from videotag.progress import Progress


@dataclasses.dataclass
class SegmentEvaluation:
    """The outcome of `run_segment_evaluation`: the metrics dict, the ranking (per-class
    AP, the submission rows) and the segment classes."""

    metrics: Dict[str, Any]
    ranking: SegmentRanking
    classes: np.ndarray


def segment_data(cfg_data, segment_label_file: Optional[str] = None):
    """A copy of a data config that reads the segment ratings (and, when given,
    the segment classes of `segment_label_file`)."""
    data = dataclasses.replace(cfg_data, segment_labels=True)
    if segment_label_file:
        data.segment_label_file = segment_label_file
    return data


def ratings_of(batch: Dict[str, tf.Tensor], video: np.ndarray, start: np.ndarray,
               classes: np.ndarray, segment_size: int) -> np.ndarray:
    """int8 [N, C']: the rating of each scored segment (`video`, `start` [N], in
    video then start order, every segment of every video) for each of `classes`:
    -1 unrated, 0 negative, 1 positive."""
    labels, starts, scores = (batch[k] for k in (seg.LABELS_KEY, seg.START_TIMES_KEY,
                                                 seg.SCORES_KEY))
    rows = labels.value_rowids().numpy()
    per_video = np.bincount(video, minlength=int(labels.nrows()))
    first = np.concatenate([[0], np.cumsum(per_video)[:-1]])
    index = first[rows] + starts.flat_values.numpy() // segment_size
    column = np.searchsorted(classes, labels.flat_values.numpy())
    ratings = np.full((len(video), len(classes)), UNRATED, np.int8)
    ratings[index, column] = scores.flat_values.numpy() > 0.5
    return ratings


def run_segment_evaluation(model, cfg, pattern: Optional[str] = None,
                           batch_size: Optional[int] = None, top_n: int = DEFAULT_TOP_N,
                           verbose: bool = True) -> SegmentEvaluation:
    """Scores `model` on the segment-rated records of `pattern` (the 2019 metric).

    Args:
        model: a videotag Keras model with a `tags` output (trained on segments or
            on whole videos: both are applied to each segment's window).
        cfg: the run's config; its data section is read with the segment ratings
            (`data.segment_label_file` gives the segment classes).
        pattern: records; default `cfg.data.eval_data_pattern`.
        batch_size: videos per batch; default `cfg.eval.batch_size`.
        top_n: the segments ranked per class (N of the metric).
        verbose: progress on stderr.

    Returns:
        A `SegmentEvaluation`; its metrics hold `SegmentRanking.result()`,
        `num_segment_classes`, `seconds` and, when records were skipped,
        `skipped_records`.

    Raises:
        DataError: bad or unreadable records.
        ModelError: the model has no `tags` output, or produced NaN scores.
    """
    data = segment_data(cfg.data)
    pattern = pattern or data.eval_data_pattern
    classes = seg.segment_classes(data)
    files = list_files(pattern)
    skips = SkipCounter() if data.on_bad_record == "skip" else None
    ds = make_dataset(data, pattern, batch_size or cfg.eval.batch_size, training=False,
                      skip_counter=skips, segments="videos")
    if "tags" not in getattr(model, "output_names", ["tags"]):
        raise ModelError(f"model '{model.name}' has no 'tags' output: nothing to score per segment")

    @tf.function(input_signature=[input_signature(data)])
    def step(inputs):
        return seg.segment_probabilities(model, inputs, data, classes)[:3]

    ranking = SegmentRanking(data.num_classes, top_n)
    start_time = time.time()
    progress = Progress("evaluated", every=10.0 if verbose else 0)
    progress.start()
    with data_errors(files):
        for batch in ds:
            probs, video, start = (t.numpy() for t in step(model_inputs(data, batch)))
            if np.isnan(probs).any():
                raise ModelError(f"the model produced NaN segment scores on {pattern}; its "
                                 "weights are probably NaN (a NaN loss in training)")
            ids = batch[schema.VIDEO_ID_KEY].numpy()
            ranking.add_scores(probs, classes, ids[video], start,
                               ratings_of(batch, video, start, classes, data.segment_size),
                               videos=len(ids))
            progress.add(len(ids))
    progress.close()
    metrics: Dict[str, Any] = ranking.result()
    metrics["num_segment_classes"] = len(classes)
    metrics["seconds"] = round(time.time() - start_time, 3)
    if skips is not None and skips.total():
        metrics["skipped_records"] = skips.counts()
    return SegmentEvaluation(metrics, ranking, classes)


def read_ratings(cfg, pattern: str, batch_size: int = 256) -> Dict:
    """{("<video id>:<start>", class id): score} of every rated pair of `pattern`,
    read and checked by the record parser (the key the starter code uses)."""
    data = segment_data(cfg.data)
    rated = {}
    ds = make_dataset(data, pattern, batch_size, training=False, segments="videos")
    with data_errors(list_files(pattern)):
        for batch in ds:
            ids = batch[schema.VIDEO_ID_KEY].numpy()
            rows = batch[seg.LABELS_KEY].value_rowids().numpy()
            for row, label, start, score in zip(
                    rows, batch[seg.LABELS_KEY].flat_values.numpy(),
                    batch[seg.START_TIMES_KEY].flat_values.numpy(),
                    batch[seg.SCORES_KEY].flat_values.numpy()):
                rated[(f"{ids[row].decode('utf-8', 'replace')}:{start}", int(label))] = float(score)
    return rated


def evaluate_submission(path: str, cfg, pattern: str, top_n: int = DEFAULT_TOP_N) -> Dict[str, Any]:
    """The segment metric of a submission file (`Class,Segments`) on rated records.

    Returns:
        `segment_map`, `top_n`, `num_rated_pairs`, `num_positive_pairs`,
        `num_classes_with_positives` and `num_submitted_classes`.

    Raises:
        DataError: the file is missing or a line is not `<class id>,<segments>`
            with a class id in [0, data.num_classes).
    """
    rated = read_ratings(cfg, pattern)
    num_classes = cfg.data.num_classes
    rows = list(read_submission(path, num_classes))
    ap, positives = submission_ap(rows, rated, num_classes, top_n)
    has = positives > 0
    return {"segment_map": float(ap[has].mean()) if has.any() else 0.0, "top_n": top_n,
            "num_rated_pairs": len(rated), "num_positive_pairs": int(positives.sum()),
            "num_classes_with_positives": int(has.sum()), "num_submitted_classes": len(rows)}


def read_submission(path: str, num_classes: int):
    """(class id, ["<video id>:<start>", ...]) of each line of a submission file."""
    try:
        f = tf.io.gfile.GFile(path, "r")
        lines = iter(f)
        header = next(lines, "").strip()
    except tf.errors.OpError:
        raise DataError(f"submission file not found: {path}") from None
    if header != "Class,Segments":
        raise DataError(f"{path}: line 1: expected the header 'Class,Segments', got {header!r}")
    with f:
        for lineno, line in enumerate(lines, start=2):
            cls, comma, segments = line.strip().partition(",")
            if not comma or not cls.isdigit() or int(cls) >= num_classes:
                raise DataError(f"{path}: line {lineno}: expected '<class id in [0, "
                                f"{num_classes})>,<video id>:<start> ...', got {line[:60]!r}")
            yield int(cls), segments.split()
