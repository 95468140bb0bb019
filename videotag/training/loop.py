"""The epoch loop of the trainer: steps, progress, logs, checkpoints, validation.

Per step: stop when SIGTERM/SIGINT came (after a checkpoint of the step reached;
see `stop.py`) or the run lock was lost, run the distributed step, stop on a loss
that is not finite (before any checkpoint of that step), log, checkpoint every
`train.checkpoint_every_steps`, validate every `train.eval_every_steps`. Per epoch:
mean losses, skipped records, validation (which a signal interrupts at once),
`metrics.json`, a checkpoint. Each epoch reads a new pass over the data whose order
depends only on `train.seed` and the epoch, so a resumed epoch skips exactly the
batches it had trained on. Validation scores the moving average of the weights when
`train.ema_decay` keeps one; after each, `selection.Selection` keeps the best
checkpoint and may stop the run early.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from typing import Dict, Optional

from videotag import files
from videotag.data import for_keras, make_dataset
from videotag.errors import TrainingError
from videotag.evaluation.evaluator import evaluate, format_metrics
from videotag.training import distribution
from videotag.training.checkpoints import checkpoint_step, weights_finite
from videotag.training.ema import averaged_weights
from videotag.training.schedules import set_epoch
from videotag.training.stop import StopSignals, _StopNow

LOSS_KEYS = ("loss", "clean_loss", "adversarial_loss")


class EpochLoop:
    """The epochs of one `train()` call: steps, logs, checkpoints, validation.

    Everything it needs is built by `train()`; its progress lives in `state` (a
    `RunState`, which each checkpoint saves), so that a resumed loop goes on where
    the checkpoint stood. `stop` (a `StopSignals`) says when a signal asks the run
    to stop; `lock` (a `RunLock`) when another run took the model directory over.
    `selection` (a `selection.Selection`) follows the validations; `stopped` holds
    why the run stopped early (None otherwise).
    """

    def __init__(self, cfg, metrics_path, model, optimizer, step, strategy, store, state,
                 boards, progress, skips, predict, evaluate_here, verbose,
                 stop: Optional[StopSignals] = None, lock=None, selection=None):
        self.cfg, self.metrics_path = cfg, metrics_path
        self.model, self.optimizer = model, optimizer
        self.step, self.strategy, self.store, self.state = step, strategy, store, state
        self.boards, self.progress, self.skips = boards, progress, skips
        self.predict, self.evaluate_here, self.verbose = predict, evaluate_here, verbose
        self.selection = selection
        self.float16 = cfg.train.mixed_precision == "mixed_float16"
        self._skipped_before: Dict[str, int] = {}
        # every worker stops at the same validations; only the chief scores them
        self.validating = bool(cfg.data.eval_data_pattern)
        self._validated: Optional[tuple] = None  # (step, result) of the last validation
        self.stopped: Optional[str] = None
        self.stop = stop or StopSignals()
        self.lock = lock
        self._saved_step = state.global_step  # the step the newest checkpoint holds
        # the loss terms of a model trained with online distillation, logged apart
        self.terms = [f"{name}_loss" for name in getattr(step, "terms", ())]
        self.loss_keys = LOSS_KEYS + tuple(self.terms)

    def epochs(self) -> None:
        t, state = self.cfg.train, self.state
        while state.epoch < t.epochs and self.stopped is None:
            self._train_epoch(state.epoch)
            if self.stopped is None:
                self._end_epoch(state.epoch)

    def _batches(self, epoch: int):
        """The epoch's distributed batches, from the step where it stands."""
        cfg = self.cfg

        def make_batches(num_shards, shard_index, batch_size):
            ds = make_dataset(cfg.data, cfg.data.train_data_pattern, batch_size, training=True,
                              seed=cfg.train.seed + epoch, skip_counter=self.skips,
                              repeat=bool(cfg.train.steps_per_epoch), num_shards=num_shards,
                              shard_index=shard_index, deterministic=True)
            return for_keras(cfg.data, ds, tasks=cfg.model.head.tasks)

        batches = distribution.distributed_batches(
            self.strategy, cfg.train.batch_size, make_batches, self.state.step_in_epoch,
            cfg.train.device_prefetch)
        if cfg.train.steps_per_epoch:
            return itertools.islice(batches, cfg.train.steps_per_epoch - self.state.step_in_epoch)
        return batches

    def _train_epoch(self, epoch: int) -> None:
        t, state = self.cfg.train, self.state
        known = t.steps_per_epoch or epoch_steps(state.history, self._epoch_source())
        self.progress.epoch_begin(epoch, known, state.step_in_epoch)
        set_epoch(getattr(self.optimizer, "lr_schedule", None), epoch)
        window_start, window_steps = time.time(), 0
        for batch in self._batches(epoch):
            self._check_stop()
            values = {k: float(v) for k, v in self.step(batch).items()}
            state.global_step += 1
            state.step_in_epoch += 1
            window_steps += 1
            self._check_finite(values)
            for key in self.loss_keys:
                state.epoch_sums[key] = state.epoch_sums.get(key, 0.0) + values[key]
            shown = {"loss": values["loss"]}
            if t.fgm_alpha:
                shown.update(clean=values["clean_loss"], adversarial=values["adversarial_loss"])
            shown.update({k[:-len("_loss")]: values[k] for k in self.terms})
            self.progress.step(state.step_in_epoch, shown)
            if state.global_step % t.log_every_steps == 0:
                now = time.time()
                rate = window_steps * t.batch_size / max(now - window_start, 1e-9)
                self._log_step(values, rate)
                window_start, window_steps = now, 0
            if t.checkpoint_every_steps and state.global_step % t.checkpoint_every_steps == 0:
                self._save()
            if (t.eval_every_steps and state.global_step % t.eval_every_steps == 0
                    and state.step_in_epoch != known):  # the epoch's end validates anyway
                result = self._validate(f"step {state.global_step}")
                self.stopped = self._select(result, epoch + 1)
                if self.stopped is not None:
                    self._save()  # a resumed run (with a larger patience) goes on from here
                    break
        self.progress.epoch_end()

    def _epoch_source(self) -> Dict:
        """What an epoch's number of steps depends on: the training data and the
        global batch size."""
        return {"train_data": self.cfg.data.train_data_pattern,
                "batch_size": self.cfg.train.batch_size}

    def _log_step(self, values: Dict[str, float], rate: float) -> None:
        t = self.cfg.train
        logged = {"loss": values["loss"], "clean_loss": values["clean_loss"],
                  "grad_norm": values["grad_norm"], "examples_per_second": rate,
                  "learning_rate": float(self.optimizer.learning_rate)}
        if t.fgm_alpha:
            logged["adversarial_loss"] = values["adversarial_loss"]
        logged.update({k: values[k] for k in self.terms})
        self.boards.scalars("train", logged, self.state.global_step)

    def _check_finite(self, values: Dict[str, float]) -> None:
        """Stops the run before anything is saved from a step whose loss (or, but
        under float16 loss scaling, where overflows are skipped, gradient) is not
        finite."""
        bad = [k for k in ("loss", "grad_norm") if not math.isfinite(values[k])]
        if self.float16 and bad == ["grad_norm"]:
            return
        if not bad:
            return
        state = self.state
        latest = self.store.latest()
        kept = (f"the last good checkpoint, {latest} (step {checkpoint_step(latest)}), "
                "is kept: run the same command to resume from it"
                if latest is not None else "no checkpoint had been saved")
        names = {"loss": "loss", "grad_norm": "gradient norm"}
        message = (
            f"the {' and the '.join(names[k] for k in bad)} became {values[bad[0]]} at step "
            f"{state.global_step} (epoch {state.epoch + 1}, "
            f"step {state.step_in_epoch} of the epoch); training stopped and {kept}. "
            "Lower train.learning_rate, set train.clip_gradient_norm, or check the data."
        )
        self._stopped(message)

    def _stopped(self, message: str):
        if self.store.writer:
            write_json(self.metrics_path, {"epochs": self.state.history, "stopped": message})
        raise TrainingError(message)

    def _save(self) -> Optional[str]:
        if not weights_finite(self.model):
            self._stopped(
                f"the weights stopped being finite at step {self.state.global_step}; the last "
                f"good checkpoint, {self.store.latest()}, is kept")
        path = self.store.save(self.model, self.optimizer, self.state)
        self._saved_step = self.state.global_step
        return path

    def _check_stop(self) -> None:
        """Before each step: a signal on any worker stops every worker here, after a
        checkpoint of the step reached; a lost run lock stops this run."""
        if self.lock is not None and self.lock.lost is not None:
            self.lock.check()
        requested = self.stop.requested is not None
        if distribution.workers_sum(self.strategy, float(requested)) > 0:
            self._stop_now()

    def _stop_now(self, agreed: bool = True):
        """Saves the current step (unless the newest checkpoint holds it) and raises
        `RunStopped`. Not `agreed` (a signal during the chief's validation): the
        other workers, waiting at their next step's check, are told first."""
        if not agreed:
            distribution.workers_sum(self.strategy, 1.0)
        self.progress.epoch_end()
        state = self.state
        where = (f"step {state.global_step} (epoch {state.epoch + 1}, step "
                 f"{state.step_in_epoch} of the epoch)")
        if state.global_step == self._saved_step:  # resumed from it, or just saved
            saved = (f"the checkpoint {self.store.path_of(state.global_step)} holds it"
                     if state.global_step else "nothing to save")
        else:
            saved = f"saved {self._save()}"
        raise self.stop.stopped(f"at {where}; {saved}: run the same command to resume")

    def _end_epoch(self, epoch: int) -> None:
        state, cfg = self.state, self.cfg
        steps = state.step_in_epoch
        entry = {"epoch": epoch + 1, "steps": steps, **self._epoch_source()}
        for key in self.loss_keys:
            if key != "adversarial_loss" or cfg.train.fgm_alpha:
                entry[key] = state.epoch_sums.get(key, math.nan) / max(steps, 1)
        if self.skips is not None:
            # the counter runs over the whole run: this epoch's share is the difference
            total = self.skips.counts()
            entry["skipped_records"] = {
                k: v - self._skipped_before.get(k, 0) for k, v in total.items()
                if v - self._skipped_before.get(k, 0)
            }
            self._skipped_before = total
            if entry["skipped_records"] and self.verbose:
                print(f"epoch {epoch + 1}: skipped bad training records "
                      f"{entry['skipped_records']}", file=sys.stderr)
        self.boards.scalars("train", {f"epoch_{k}": entry[k] for k in self.loss_keys if k in entry},
                            state.global_step)
        fresh, result = False, None
        if self._validated is not None and self._validated[0] == state.global_step:
            result = self._validated[1]  # validated at the epoch's last step already
            if self.verbose and result is not None:
                print(f"epoch {epoch + 1} validation: {format_metrics(result, cfg.eval.top_k)}",
                      file=sys.stderr)
        elif self.validating:
            fresh, result = True, self._validate(f"epoch {epoch + 1}")
        if result is not None:
            entry["validation"] = result
        self.boards.flush()
        state.history.append(entry)
        state.epoch, state.step_in_epoch, state.epoch_sums = epoch + 1, 0, {}
        if fresh:  # the state stands at the next epoch, where a resumed run goes on
            self.stopped = self._select(result, epoch + 1)
        if self.store.writer:
            write_json(self.metrics_path, metrics_payload(state))
        self._save()

    def _validate(self, label: str) -> Optional[Dict]:
        """Scores the validation data (the chief; None elsewhere) on the averaged
        weights when kept, records and logs it."""
        state, cfg = self.state, self.cfg
        result = None
        if self.evaluate_here:
            try:
                with self.stop.interruptible():  # validation writes nothing: stop at once
                    with averaged_weights(self.model, self.optimizer):
                        result = evaluate(self.model, cfg, verbose=self.verbose,
                                          predict=self.predict)
            except _StopNow:  # the steps are saved; an epoch's end validates again
                self._stop_now(agreed=False)
            line = f"{label} validation: {format_metrics(result, cfg.eval.top_k)}"
            if self.verbose:
                self.progress.message(line)
            self.boards.scalars("validation", numbers(result), state.global_step)
            state.validations.append({"step": state.global_step, "epoch": state.epoch + 1,
                                      "metrics": result})
        self._validated = (state.global_step, result)
        return result

    def _select(self, result: Optional[Dict], epoch: int) -> Optional[str]:
        """Keep-best and early stopping after a validation; why the run stops, or
        None. With several workers, the chief's decision is every worker's."""
        stop = None
        if self.selection is not None and result is not None:
            stop = self.selection.observe(result, epoch, self.model, self.optimizer)
            line = self.selection.best_line("new best")
            if self.verbose and line and self.state.best["step"] == self.state.global_step:
                self.progress.message(line)
        if self.selection is not None and self.cfg.train.early_stopping.patience:
            if distribution.chief_decides(self.strategy, stop is not None) and stop is None:
                stop = "stopped early: the chief worker's validation stopped improving"
        if stop is not None and self.verbose:
            self.progress.message(stop)
        return stop


def epoch_steps(history, source: Dict) -> Optional[int]:
    """The steps of the last whole epoch over the same data with the same batch size
    (`source`), the length of the epoch about to run; None when no such epoch is in
    `history` (the first epoch, or a run resumed on other data or batches)."""
    last = next((h for h in reversed(history) if "steps" in h), None)
    if last is None or any(last.get(k) != v for k, v in source.items()):
        return None
    return last["steps"]


def metrics_payload(state) -> Dict:
    """What metrics.json holds during a run: the epochs, every validation and the
    best one (`train.keep_best`)."""
    payload = {"epochs": state.history, "validations": state.validations}
    if state.best is not None:
        payload["best"] = state.best
    return payload


def numbers(result: Dict) -> Dict[str, float]:
    """The plain numbers of an evaluation result (for TensorBoard)."""
    return {k: v for k, v in result.items()
            if isinstance(v, (int, float)) and k not in ("seconds", "num_videos")}


def write_json(path: str, payload) -> None:
    """Writes JSON whole or not at all (`videotag.files.write_bytes`, any file system).

    Raises:
        StorageError: the write failed (the previous file is intact).
    """
    files.write_bytes(str(path), json.dumps(payload, indent=2, default=float).encode(),
                      "metrics file")
