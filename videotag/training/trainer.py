"""The trainer: builds the model under its strategy, trains it, scores it after each
epoch, checkpoints, and resumes a run that was stopped.

Layout of a model directory (local, or any file system `tf.io.gfile` reaches):
    train.lock                    held by the run in progress (see `lock.py`)
    config.yaml                   the full config of the run
    vocab.txt                     the title vocabulary (models that read titles)
    checkpoints/ckpt-000000120/   weights, optimizer state, step and epoch, manifest
                                  (last N kept; see `checkpoints.py`)
    checkpoints/best/ckpt-.../    the best validation's checkpoint (`train.keep_best`)
    logs/train, logs/validation   TensorBoard logs
    model.keras                   the final model (Keras format, float32)
    metrics.json                  losses and validation metrics per epoch, summary

Running the same command again on a model directory that holds checkpoints resumes
from the newest intact one: the same epoch, the same step in it, the same order of
videos, and the run ends with the same number of steps as one that was never
stopped. SIGTERM or SIGINT stops a run after a checkpoint of its current step (see
`stop.py`), so the same command resumes it just the same. A new run may start from
another run's weights (`train.init_from`, `warm_start.py`); its own checkpoints win
over that when it resumes. `loading.py` reads a model directory back
(`load_trained`, also importable from here).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from videotag import filesystem
from videotag.config import Config, engine as config_engine
from videotag.data import SkipCounter, data_errors, list_files
from videotag.data.record_types import check_record_type
from videotag.data.sources import resolve_data
from videotag.data.vocab import prepare_vocabulary
from videotag.errors import ConfigError, ModelError, StorageError
from videotag.files import replace_file, write_text
from videotag.filesystem import join
from videotag.evaluation.evaluator import evaluate, format_metrics, predict_function
from videotag.registry import build_model
from videotag.training import distribution, storage
from videotag.training.checkpoints import CheckpointStore, RunState, needed_bytes
from videotag.training.ema import averaged_values
from videotag.training.lock import RunLock, check_worker_lock, cluster_id
from videotag.training.stop import StopSignals, _StopNow
from videotag.training.freeze import configured_freezes, freeze_configured
from videotag.training.learning_rates import set_learning_rate_multipliers
from videotag.training.loading import (  # noqa: F401  (load_trained, checkpoint_path: public here)
    CHECKPOINT_DIR,
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_FILE,
    checkpoint_path,
    load_trained,
    read_config,
)
from videotag.training.logs import EpochProgress, TensorBoardLogs
from videotag.training.loop import EpochLoop, metrics_payload, numbers, write_json
from videotag.training.schedules import learning_rate_schedule  # noqa: F401  (public here)
from videotag.training.selection import BEST_DIR, Selection
from videotag.training.step import TrainStep, make_optimizer
from videotag.training.warm_start import warm_start


def compile_model(model: keras.Model, cfg: Config) -> keras.Model:
    """Compiles for `model.fit` (the trainer itself does not use fit): the optimizer
    of `train.optimizer` with the configured schedule and clipping (global or per
    variable), binary cross-entropy on `tags` (summed over the classes with
    `model.head.tags_loss: sum`), cross-entropy on `category` (weighted by
    `model.head.tags_weight` / `category_weight`), no loss on `embedding`."""
    head = cfg.model.head
    losses, weights = {}, {}
    if "tags" in head.tasks:
        losses["tags"] = keras.losses.BinaryCrossentropy()
        weights["tags"] = head.tags_weight * (cfg.data.num_classes if head.tags_loss == "sum"
                                              else 1)
    if "category" in head.tasks:
        losses["category"] = keras.losses.SparseCategoricalCrossentropy()
        weights["category"] = head.category_weight
    model.compile(
        optimizer=make_optimizer(cfg, summed_by_step=False),
        loss=losses,
        loss_weights=weights,
    )
    return model


@contextlib.contextmanager
def _dtype_policy(mixed_precision: str):
    """Layers built inside use `mixed_precision` ("none": float32)."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32" if mixed_precision == "none" else mixed_precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def build_for_training(cfg: Config, strategy: tf.distribute.Strategy):
    """(model, optimizer) built in the strategy's scope: the model under the
    configured precision policy, batch norm synchronised over several replicas (per
    `train.sync_batch_norm`), the layers of `train.freeze` (and of the model's own
    freeze keys) frozen, Adam built on the trainable weights with the multipliers of
    `train.lr_multipliers`.

    Raises:
        ConfigError: XLA with several replicas and synchronised batch norm.
    """
    replicas = strategy.num_replicas_in_sync
    if cfg.train.jit_compile and replicas > 1 and cfg.train.sync_batch_norm:
        raise ConfigError(
            "config key 'train.jit_compile' with several replicas needs "
            "train.sync_batch_norm=false (synchronised batch-norm statistics use "
            "collective ops, which cannot run inside an XLA cluster)"
        )
    with strategy.scope():
        with _dtype_policy(cfg.train.mixed_precision):
            model = build_model(cfg)
        distribution.set_sync_batch_norm(model, replicas > 1 and cfg.train.sync_batch_norm)
        freeze_configured(model, cfg)
        optimizer = make_optimizer(cfg)
        optimizer.build(model.trainable_variables)
        set_learning_rate_multipliers(optimizer, model, cfg.train.lr_multipliers)
    return model, optimizer


def train(cfg: Config, model_dir: str, verbose: bool = True) -> Dict:
    """Trains `cfg.model` on `cfg.data`, scoring the validation data after each epoch.

    Resumes from the newest checkpoint of `model_dir` when there is one; otherwise
    starts from the weights of `train.init_from` when set (a warm start).

    Args:
        cfg: the run's config; with no data patterns the demo data is used.
        model_dir: where the config, checkpoints, logs, final model and metrics go.
        verbose: progress bar (or lines) and per-epoch lines.

    Returns:
        A summary dict: model, model_dir, epochs, steps, seconds, final_loss, final
        validation metrics and, when `train.eval_before_training` is set, the
        metrics before training (`untrained_validation`: of the warm-started
        weights with `train.init_from`); with `data.on_bad_record=skip` the records
        skipped in the first epoch; `warm_start` (what `train.init_from` loaded),
        `best` (`train.keep_best`: metric, value, step, epoch, checkpoint) and
        `stopped_early` (why, when early stopping ended the run) when they apply.

    Raises:
        DataError: bad or unreadable training records (naming the file and record).
        TrainingError: the loss or the weights stopped being finite (the last good
            checkpoint is kept).
        ConfigError: a config that cannot run (e.g. a batch that does not divide
            by the replicas), or a model directory holding another model.
        ModelError: another run holds the model directory (its lock).
        StorageError: no intact checkpoint to resume from, or a checkpoint or the
            final model could not be written (no space left, ...); the previous
            checkpoint is intact.
        RunStopped: SIGTERM or SIGINT stopped the run after a checkpoint.
    """
    start = time.time()
    strategy = distribution.make_strategy(cfg.train)  # first: multi_worker needs that
    chief = distribution.is_chief(strategy)
    out = str(model_dir)
    with StopSignals(cfg.train.stop_timeout_seconds) as stop:
        with _run_lock(cfg, out, strategy, chief) as lock:
            return _run(cfg, out, strategy, chief, verbose and chief, start, stop, lock)


@contextlib.contextmanager
def _run_lock(cfg: Config, out: str, strategy, chief: bool):
    """The lock of the model directory for this run: taken by the chief (one per
    cluster), checked by the other workers; released on the way out."""
    multi_worker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    cluster = cluster_id() if multi_worker else ""
    lock, failure = None, None
    if chief:
        try:
            lock = RunLock(out, cfg.train.lock_stale_seconds, cluster).acquire()
        except (ModelError, StorageError) as exc:
            failure = exc
    if distribution.workers_sum(strategy, float(failure is not None)) > 0:  # all agree
        if failure is not None:
            raise failure
        raise ModelError(f"the chief could not take the lock of {out} (see its message)")
    if not chief:
        check_worker_lock(out, cluster)
    try:
        yield lock
    finally:
        if lock is not None:
            lock.release()


def _run(cfg: Config, out: str, strategy, chief: bool, verbose: bool, start: float,
         stop: StopSignals, lock: Optional[RunLock]) -> Dict:
    """`train()` once the run holds its model directory."""
    cfg = resolve_data(cfg, verbose=verbose)
    _check_validation_data(cfg)
    # before anything is written: an empty glob, records of the other kind
    files = list_files(cfg.data.train_data_pattern)
    check_record_type(cfg.data, files)
    if cfg.data.eval_data_pattern:
        check_record_type(cfg.data, list_files(cfg.data.eval_data_pattern))
    store = CheckpointStore(join(out, CHECKPOINT_DIR), cfg.train.keep_checkpoints,
                            writer=chief, before_save=lock.check if lock else None)
    latest = store.latest()
    tf.io.gfile.makedirs(out)
    # models reading titles: vocab.txt, built from the training titles (the same
    # titles give the same file, so a resumed run and every worker agree)
    prepare_vocabulary(cfg, out, verbose=verbose)
    if chief and latest is not None:
        _check_same_model(cfg, join(out, CONFIG_FILE))
    keras.utils.set_random_seed(cfg.train.seed)

    replicas = strategy.num_replicas_in_sync
    model, optimizer = build_for_training(cfg, strategy)
    freezes = configured_freezes(cfg)
    if verbose and freezes:
        trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        asked = "; ".join(f"{key}: {', '.join(patterns)}" for key, patterns in freezes)
        print(f"training {trainable:,} of {model.count_params():,} parameters ({asked})",
              file=sys.stderr)
    state = RunState()
    started = None
    if latest is not None:
        latest, state = store.restore_latest(model, optimizer)
        if verbose and state.epoch >= cfg.train.epochs:
            print(f"{latest} ends a complete run ({state.epoch} epochs, {state.global_step} "
                  "steps): nothing to train (raise train.epochs to go on, or use a new "
                  "model_dir)", file=sys.stderr)
        elif verbose:
            print(f"resuming from {latest} (epoch {state.epoch + 1}, step {state.step_in_epoch} "
                  f"of the epoch, {state.global_step} steps done)", file=sys.stderr)
        if verbose and cfg.train.init_from:
            print(f"train.init_from ({cfg.train.init_from}) is not used: the run resumes its "
                  f"own checkpoint {latest}, which wins over a warm start", file=sys.stderr)
    elif cfg.train.init_from:
        started = warm_start(model, cfg.train.init_from)
        if verbose:
            print(started.report(limit=12), file=sys.stderr)
    best_store = CheckpointStore(join(out, CHECKPOINT_DIR, BEST_DIR), 1,
                                 writer=chief and bool(cfg.train.keep_best),
                                 before_save=lock.check if lock else None)
    selection = Selection(cfg, state, best_store)
    if chief:  # once the checkpoint to resume from is known to be there and intact
        write_text(join(out, CONFIG_FILE), config_engine.dump_yaml(cfg), "config file")
    step = TrainStep(cfg, model, optimizer, strategy)
    skips = SkipCounter() if cfg.data.on_bad_record == "skip" else None
    boards = TensorBoardLogs(out, enabled=chief and cfg.train.tensorboard)
    predict = predict_function(model, cfg.data)  # one trace for every evaluation
    evaluate_here = bool(cfg.data.eval_data_pattern) and chief
    summary: Dict = {"model": cfg.model.name, "model_dir": str(out), "replicas": replicas}
    if started is not None:
        summary["warm_start"] = started.to_dict()

    if (cfg.train.eval_before_training and evaluate_here and state.global_step == 0
            and state.untrained_validation is None):
        try:
            with stop.interruptible():
                state.untrained_validation = evaluate(model, cfg, verbose=verbose,
                                                      predict=predict)
        except _StopNow:
            raise stop.stopped("before training started; nothing to save") from None
        boards.scalars("validation", numbers(state.untrained_validation), 0)
        if verbose:
            before = "warm-started model (before training)" if started else "untrained model"
            print(f"{before} validation: "
                  f"{format_metrics(state.untrained_validation, cfg.eval.top_k)}", file=sys.stderr)

    progress = EpochProgress(verbose, cfg.train.batch_size, cfg.train.epochs,
                             fgm=bool(cfg.train.fgm_alpha), terms=step.terms)
    run = EpochLoop(cfg, join(out, METRICS_FILE), model, optimizer, step, strategy,
                    store, state, boards, progress, skips, predict, evaluate_here, verbose,
                    stop=stop, lock=lock, selection=selection)
    run.stopped = selection.stopped()  # a run that stopped early stays stopped
    if run.stopped and verbose:
        print(f"{latest}: {run.stopped}: nothing to train (raise the patience or turn "
              "train.early_stopping off to go on)", file=sys.stderr)
    try:
        with data_errors(files):
            run.epochs()
    finally:
        boards.close()
    stop.finishing(store.latest())  # a signal now bounds the final files' time only

    history = state.history
    summary.update(
        epochs=len(history),
        steps=state.global_step,
        seconds=round(time.time() - start, 1),
        final_loss=history[-1]["loss"] if history else None,
    )
    if state.untrained_validation is not None:
        summary["untrained_validation"] = state.untrained_validation
    if history and "validation" in history[-1]:
        summary["validation"] = history[-1]["validation"]
    if run.stopped:
        summary["stopped_early"] = run.stopped
    if state.best is not None:
        summary["best"] = {k: v for k, v in state.best.items() if k != "validation"}
        summary["best"]["checkpoint"] = str(selection.best_store.latest())
    if skips is not None:
        summary["skipped_records_per_epoch"] = (
            history[0].get("skipped_records", {}) if history else {})
        if verbose:
            print(f"training data in this run: {skips.summary()}", file=sys.stderr)
    if chief:
        save_model_file(_final_model(cfg, averaged_values(model, optimizer)),
                        join(out, MODEL_FILE))
        write_json(join(out, METRICS_FILE), {**metrics_payload(state), "summary": summary})
    distribution.barrier(strategy)  # no worker leaves before the chief has written
    if verbose:
        if selection.best_line():
            print(selection.best_line(), file=sys.stderr)
        print(summary_line(summary, cfg.eval.top_k), file=sys.stderr)
    return summary


def _check_validation_data(cfg: Config) -> None:
    """Validation every N steps, keep-best and early stopping need validation data."""
    t = cfg.train
    for key, on in (("train.eval_every_steps", t.eval_every_steps),
                    ("train.keep_best", t.keep_best),
                    ("train.early_stopping.patience", t.early_stopping.patience)):
        if on and not cfg.data.eval_data_pattern:
            raise ConfigError(f"config key '{key}' needs validation data: set "
                              "data.eval_data_pattern (--eval_data_pattern)")


def _check_same_model(cfg: Config, saved_path: str) -> None:
    """Resuming: the checkpoints must be of the same model and data shapes."""
    if not tf.io.gfile.exists(saved_path):
        return
    saved = read_config(saved_path)
    for section in ("model", "data"):
        old, new = getattr(saved, section).__dict__, getattr(cfg, section).__dict__
        keys = ["num_classes", "feature_names", "feature_sizes", "record_type", "use_title",
                "num_categories"] if section == "data" else list(new)
        for key in keys:
            if old.get(key) != new.get(key):
                raise ConfigError(
                    f"{os.path.dirname(saved_path)} holds checkpoints of another model: config key "
                    f"'{section}.{key}' was {old.get(key)!r}, is now {new.get(key)!r} (use a "
                    "new model_dir, or remove its checkpoints to start over)"
                )


def _final_model(cfg: Config, weights) -> keras.Model:
    """A float32 model outside any strategy holding `weights` (`model.weights`
    order): what model.keras holds."""
    with _dtype_policy("none"):
        final = build_model(cfg)
    final.set_weights(weights)
    return final


def summary_line(summary: Dict, top_k: int = 20) -> str:
    """`trained NEXTVLAD: 5 epochs, 120 steps, 95 s; validation GAP@20 0.81 (untrained 0.09)`."""
    line = (
        f"trained {summary['model']}: {summary['epochs']} epochs, {summary['steps']} steps, "
        f"{summary['seconds']} s"
    )
    gap = summary.get("validation", {}).get("gap")
    segment_map = summary.get("validation", {}).get("segment_map")
    if segment_map is not None:
        line += f"; validation segment mAP {segment_map:.4f}"
        untrained = summary.get("untrained_validation", {}).get("segment_map")
        if untrained is not None:
            line += f" (untrained {untrained:.4f})"
    if gap is not None:
        line += f"; validation GAP@{top_k} {gap:.4f}"
        untrained = summary.get("untrained_validation", {}).get("gap")
        if untrained is not None:
            before = "before training" if summary.get("warm_start") else "untrained"
            line += f" ({before} {untrained:.4f})"
    if summary.get("stopped_early"):
        line += f"; stopped early at step {summary['steps']}"
    return line + f"; model in {summary['model_dir']}"


def save_model_file(model: keras.Model, path: str) -> None:
    """Saves `model` (Keras format) to `path` whole or not at all: the free space is
    checked first, the file is written under a temporary name and swapped in (see
    `videotag.files.replace_file`; the `.keras` writer keeps the HDF5 library off the disk, see
    `checkpoints.py`). Temporary files of `path` left by stopped processes are removed.

    Raises:
        StorageError: not enough space, or the write failed (an earlier file at
            `path` is intact, the temporary file removed).
    """
    kept = "the checkpoints are intact"
    storage.check_space(filesystem.parent(path), needed_bytes(model), path, kept)
    tmp = filesystem.temporary_name(path, ".keras")
    # a process stopped in the middle of this write (by train.stop_timeout_seconds or a
    # second signal) left its temporary file; the run lock makes this process the only
    # writer, so the temporary files of other processes are stale
    for leftover in filesystem.others_temporaries(path, ".keras"):
        filesystem.remove_quietly(leftover)
    with storage.failed_write(tmp, path, f"; {kept}"):
        model.save(tmp)
        replace_file(tmp, path, what="model file")
