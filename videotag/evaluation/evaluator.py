"""Scoring a model on a glob of records with the streaming YT8M metrics."""

from __future__ import annotations

import sys
import time
from typing import Dict, Optional

import tensorflow as tf

from videotag.data import schema
from videotag.data.reader import (
    SkipCounter,
    input_signature,
    list_files,
    make_dataset,
    model_inputs,
    translate_error,
)
from videotag.evaluation.metrics import StreamingEvaluator


def predict_function(model, data_cfg):
    """A compiled function: model inputs -> `tags` probabilities (inference mode)."""

    @tf.function(input_signature=[input_signature(data_cfg)])
    def predict(inputs):
        return model(inputs, training=False)["tags"]

    return predict


def evaluate(
    model,
    cfg,
    pattern: Optional[str] = None,
    batch_size: Optional[int] = None,
    verbose: bool = True,
    predict=None,
) -> Dict[str, float]:
    """GAP@k, mAP, Hit@1 and PERR of `model` on the records of `pattern`.

    Args:
        model: a videotag Keras model.
        cfg: the run's config (data section and eval.top_k).
        pattern: records to score; default `cfg.data.eval_data_pattern`.
        batch_size: default `cfg.eval.batch_size`.
        verbose: print progress to stderr.
        predict: a function from `predict_function(model)`, to reuse its trace.

    Returns:
        The metrics dict of `StreamingEvaluator.result()`, plus `seconds` and, when
        records were skipped, `skipped_records`.

    Raises:
        DataError: bad or unreadable records (naming the file and record).
    """
    pattern = pattern or cfg.data.eval_data_pattern
    files = list_files(pattern)
    skips = SkipCounter() if cfg.data.on_bad_record == "skip" else None
    ds = make_dataset(
        cfg.data, pattern, batch_size or cfg.eval.batch_size, training=False, skip_counter=skips
    )
    predict = predict or predict_function(model, cfg.data)
    evaluator = StreamingEvaluator(cfg.data.num_classes, top_k=cfg.eval.top_k)
    start = last = time.time()
    try:
        for batch in ds:
            scores = predict(model_inputs(cfg.data, batch)).numpy()
            evaluator.add(scores, batch[schema.LABELS_KEY].numpy())
            if verbose and time.time() - last > 10:
                last = time.time()
                rate = evaluator.num_videos / (last - start)
                print(f"  evaluated {evaluator.num_videos} videos ({rate:.0f}/s)", file=sys.stderr)
    except tf.errors.OpError as exc:
        error = translate_error(exc, files)
        if error is None:
            raise
        raise error from None
    result = evaluator.result()
    result["seconds"] = round(time.time() - start, 3)
    if skips is not None and skips.total():
        result["skipped_records"] = skips.counts()
    return result


def format_metrics(result: Dict[str, float], top_k: int = 20) -> str:
    """One line: `GAP@20 0.8123  mAP 0.5012  Hit@1 0.8421  PERR 0.7012  (1000 videos)`."""
    return (
        f"GAP@{top_k} {result['gap']:.4f}  mAP {result['map']:.4f}  "
        f"Hit@1 {result['hit_at_1']:.4f}  PERR {result['perr']:.4f}  "
        f"({int(result['num_videos'])} videos)"
    )
