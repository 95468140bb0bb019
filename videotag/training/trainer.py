"""The trainer: builds the model, fits it, scores it after each epoch, checkpoints.

Layout of a model directory:
    config.yaml                      the full config of the run
    vocab.txt                        the title vocabulary (models that read titles)
    checkpoints/epoch-0003.weights.h5  weights after each epoch (last N kept)
    model.keras                      the final model (Keras format)
    metrics.json                     validation metrics per epoch and the summary
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Dict, List, Optional

import keras
import tensorflow as tf

from videotag.config import Config
from videotag.data.reader import SkipCounter, for_keras, list_files, make_dataset, translate_error
from videotag.data.sources import resolve_data
from videotag.data.vocab import prepare_vocabulary
from videotag.evaluation.evaluator import evaluate, format_metrics, predict_function
from videotag.registry import build_model

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.keras"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoints"


def learning_rate_schedule(cfg: Config):
    """Adam's learning rate: constant, or x`lr_decay` every `lr_decay_examples` examples."""
    t = cfg.train
    if not t.lr_decay_examples or t.lr_decay == 1.0:
        return t.learning_rate
    return keras.optimizers.schedules.ExponentialDecay(
        t.learning_rate,
        decay_steps=max(1, t.lr_decay_examples // t.batch_size),
        decay_rate=t.lr_decay,
        staircase=True,
    )


def compile_model(model: keras.Model, cfg: Config) -> keras.Model:
    """Compiles with Adam: binary cross-entropy on `tags`, cross-entropy on `category`
    (weighted by `model.head.tags_weight` / `category_weight`), no loss on `embedding`."""
    clip = cfg.train.clip_gradient_norm or None
    head = cfg.model.head
    losses, weights = {}, {}
    if "tags" in head.tasks:
        losses["tags"] = keras.losses.BinaryCrossentropy()
        weights["tags"] = head.tags_weight
    if "category" in head.tasks:
        losses["category"] = keras.losses.SparseCategoricalCrossentropy()
        weights["category"] = head.category_weight
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate_schedule(cfg), global_clipnorm=clip),
        loss=losses,
        loss_weights=weights,
    )
    return model


class _ProgressLog(keras.callbacks.Callback):
    """A progress line every `seconds` when no progress bar is drawn (logs, nohup)."""

    def __init__(self, batch_size: int, seconds: float = 30.0):
        super().__init__()
        self.batch_size = batch_size
        self.seconds = seconds

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.steps = epoch + 1, 0
        self.start = self.last = time.time()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        now = time.time()
        if now - self.last >= self.seconds:
            self.last = now
            rate = self.steps * self.batch_size / (now - self.start)
            loss = (logs or {}).get("loss")
            loss_text = f", loss {float(loss):.4f}" if loss is not None else ""
            print(f"epoch {self.epoch} step {self.steps}{loss_text}, {rate:.0f} examples/s",
                  file=sys.stderr, flush=True)


class _EpochEvaluation(keras.callbacks.Callback):
    """Scores the validation data after each epoch and saves an epoch checkpoint."""

    def __init__(self, cfg: Config, model_dir: Path, history: List[Dict], predict,
                 skips: Optional[SkipCounter] = None):
        super().__init__()
        self.cfg = cfg
        self.model_dir = model_dir
        self.history = history
        self.skips = skips
        self._skipped_before: Dict[str, int] = {}
        self.predict = predict
        self.steps = 0

    def on_train_batch_end(self, batch, logs=None):
        # counted here: optimizer.iterations also counts the end-of-data probe that
        # Keras makes on a dataset of unknown length, one per epoch
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        ckpt_dir = self.model_dir / CHECKPOINT_DIR
        ckpt_dir.mkdir(exist_ok=True)
        self.model.save_weights(str(ckpt_dir / f"epoch-{epoch + 1:04d}.weights.h5"))
        for old in sorted(ckpt_dir.glob("epoch-*.weights.h5"))[: -self.cfg.train.keep_checkpoints]:
            old.unlink()
        entry = {"epoch": epoch + 1, "loss": float(logs.get("loss", math.nan)) if logs else None}
        if self.skips is not None:
            # the counter runs over the whole run: this epoch's share is the difference
            total = self.skips.counts()
            entry["skipped_records"] = {
                k: v - self._skipped_before.get(k, 0) for k, v in total.items()
                if v - self._skipped_before.get(k, 0)
            }
            self._skipped_before = total
            if entry["skipped_records"]:
                print(f"epoch {epoch + 1}: skipped bad training records "
                      f"{entry['skipped_records']}", file=sys.stderr)
        if self.cfg.data.eval_data_pattern:
            result = evaluate(self.model, self.cfg, predict=self.predict)
            print(f"epoch {epoch + 1} validation: {format_metrics(result, self.cfg.eval.top_k)}",
                  file=sys.stderr)
            entry["validation"] = result
            if logs is not None and "gap" in result:
                logs["val_gap"] = result["gap"]
        self.history.append(entry)
        _write_json(self.model_dir / METRICS_FILE, {"epochs": self.history})


def train(cfg: Config, model_dir: str, verbose: bool = True) -> Dict:
    """Trains `cfg.model` on `cfg.data`, scoring the validation data after each epoch.

    Args:
        cfg: the run's config; with no data patterns the demo data is used.
        model_dir: where the config, checkpoints, final model and metrics go.
        verbose: progress bar and per-epoch lines.

    Returns:
        A summary dict: epochs, steps, seconds, final validation metrics and, when
        `train.eval_before_training` is set, the untrained model's metrics.

    Raises:
        DataError: bad or unreadable training records (naming the file and record).
    """
    start = time.time()
    cfg = resolve_data(cfg, verbose=verbose)
    out = Path(model_dir)
    out.mkdir(parents=True, exist_ok=True)
    prepare_vocabulary(cfg, out, verbose=verbose)  # models reading titles: vocab.txt
    cfg.save(out / CONFIG_FILE)
    keras.utils.set_random_seed(cfg.train.seed)

    files = list_files(cfg.data.train_data_pattern)
    if cfg.data.eval_data_pattern:
        list_files(cfg.data.eval_data_pattern)  # fail early on an empty glob
    model = compile_model(build_model(cfg), cfg)
    skips = SkipCounter() if cfg.data.on_bad_record == "skip" else None
    steps = cfg.train.steps_per_epoch or None
    train_ds = for_keras(
        cfg.data,
        make_dataset(
            cfg.data,
            cfg.data.train_data_pattern,
            cfg.train.batch_size,
            training=True,
            seed=cfg.train.seed,
            skip_counter=skips,
            repeat=steps is not None,
        ),
        tasks=cfg.model.head.tasks,
    )
    summary: Dict = {"model": cfg.model.name, "model_dir": str(out)}
    predict = predict_function(model, cfg.data)  # one trace for every evaluation
    if cfg.train.eval_before_training and cfg.data.eval_data_pattern:
        untrained = evaluate(model, cfg, verbose=verbose, predict=predict)
        summary["untrained_validation"] = untrained
        if verbose:
            print(f"untrained model validation: {format_metrics(untrained, cfg.eval.top_k)}",
                  file=sys.stderr)

    history: List[Dict] = []
    callbacks = [_EpochEvaluation(cfg, out, history, predict, skips)]
    progress_bar = sys.stdout.isatty()
    if verbose and not progress_bar:
        callbacks.append(_ProgressLog(cfg.train.batch_size))
    try:
        with warnings.catch_warnings():
            # fit on a tf.data stream of unknown length: Keras warns about a shuffle
            # flag that does not apply and about the end of the data (the epoch's end)
            warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
            warnings.filterwarnings("ignore", message=".*ran out of data.*")
            fit = model.fit(
                train_ds,
                epochs=cfg.train.epochs,
                steps_per_epoch=steps,
                callbacks=callbacks,
                verbose=(1 if progress_bar else 2) if verbose else 0,
            )
    except tf.errors.OpError as exc:
        error = translate_error(exc, files)
        if error is None:
            raise
        raise error from None

    model.save(out / MODEL_FILE)
    summary.update(
        epochs=len(fit.epoch),
        steps=callbacks[0].steps,
        seconds=round(time.time() - start, 1),
        final_loss=history[-1]["loss"] if history else None,
    )
    if history and "validation" in history[-1]:
        summary["validation"] = history[-1]["validation"]
    if skips is not None:
        summary["skipped_records_per_epoch"] = history[0].get("skipped_records", {}) if history else {}
        if verbose:
            print(f"training data over {len(history)} epochs: {skips.summary()}", file=sys.stderr)
    _write_json(out / METRICS_FILE, {"epochs": history, "summary": summary})
    if verbose:
        print(summary_line(summary, cfg.eval.top_k), file=sys.stderr)
    return summary


def summary_line(summary: Dict, top_k: int = 20) -> str:
    """`trained NEXTVLAD: 5 epochs, 120 steps, 95 s; validation GAP@20 0.81 (untrained 0.09)`."""
    line = (
        f"trained {summary['model']}: {summary['epochs']} epochs, {summary['steps']} steps, "
        f"{summary['seconds']} s"
    )
    if "gap" in summary.get("validation", {}):
        line += f"; validation GAP@{top_k} {summary['validation']['gap']:.4f}"
        if "untrained_validation" in summary:
            line += f" (untrained {summary['untrained_validation']['gap']:.4f})"
    return line + f"; model in {summary['model_dir']}"


def _write_json(path: Path, payload) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(path)


def load_trained(model_dir: str, checkpoint: Optional[str] = None):
    """(config, model) of a trained model directory.

    Uses `model.keras` when present, otherwise rebuilds the model from `config.yaml`
    and loads the newest epoch checkpoint (or `checkpoint`, a weights file).

    Raises:
        ModelError: the directory holds no config or no weights.
    """
    from videotag import config as config_lib
    from videotag.errors import ModelError

    root = Path(model_dir)
    if not (root / CONFIG_FILE).is_file():
        raise ModelError(f"{model_dir}: no {CONFIG_FILE}; is this a videotag model directory?")
    cfg = config_lib.load(str(root / CONFIG_FILE))
    if checkpoint is None and (root / MODEL_FILE).is_file():
        return cfg, keras.saving.load_model(root / MODEL_FILE)
    weights = checkpoint or next(
        iter(sorted((root / CHECKPOINT_DIR).glob("epoch-*.weights.h5"), reverse=True)), None
    )
    if weights is None:
        raise ModelError(f"{model_dir}: no {MODEL_FILE} and no checkpoint in {CHECKPOINT_DIR}/")
    model = build_model(cfg)
    model.load_weights(str(weights))
    return cfg, model
