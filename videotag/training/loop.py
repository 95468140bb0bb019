"""The epoch loop of the trainer: steps, progress, logs, checkpoints, validation.

Per step: run the distributed step, stop on a loss that is not finite (before any
checkpoint of that step), log, checkpoint every `train.checkpoint_every_steps`. Per
epoch: mean losses, skipped records, validation, `metrics.json`, a checkpoint. Each
epoch reads a new pass over the data whose order depends only on `train.seed` and
the epoch, so a resumed epoch skips exactly the batches it had trained on.
"""

from __future__ import annotations

import itertools
import json
import math
import sys
import time
from pathlib import Path
from typing import Dict

from videotag.data import for_keras, make_dataset
from videotag.errors import TrainingError
from videotag.evaluation.evaluator import evaluate, format_metrics
from videotag.training import distribution
from videotag.training.checkpoints import weights_finite

LOSS_KEYS = ("loss", "clean_loss", "adversarial_loss")


class EpochLoop:
    """The epochs of one `train()` call: steps, logs, checkpoints, validation.

    Everything it needs is built by `train()`; its progress lives in `state` (a
    `RunState`, which each checkpoint saves), so that a resumed loop goes on where
    the checkpoint stood.
    """

    def __init__(self, cfg, metrics_path, model, optimizer, step, strategy, store, state,
                 boards, progress, skips, predict, evaluate_here, verbose):
        self.cfg, self.metrics_path = cfg, metrics_path
        self.model, self.optimizer = model, optimizer
        self.step, self.strategy, self.store, self.state = step, strategy, store, state
        self.boards, self.progress, self.skips = boards, progress, skips
        self.predict, self.evaluate_here, self.verbose = predict, evaluate_here, verbose
        self.float16 = cfg.train.mixed_precision == "mixed_float16"
        self._skipped_before: Dict[str, int] = {}
        # the loss terms of a model trained with online distillation, logged apart
        self.terms = [f"{name}_loss" for name in getattr(step, "terms", ())]
        self.loss_keys = LOSS_KEYS + tuple(self.terms)

    def epochs(self) -> None:
        t, state = self.cfg.train, self.state
        while state.epoch < t.epochs:
            self._train_epoch(state.epoch)
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
            self.strategy, cfg.train.batch_size, make_batches, self.state.step_in_epoch)
        if cfg.train.steps_per_epoch:
            return itertools.islice(batches, cfg.train.steps_per_epoch - self.state.step_in_epoch)
        return batches

    def _train_epoch(self, epoch: int) -> None:
        t, state = self.cfg.train, self.state
        known = t.steps_per_epoch or next(
            (h["steps"] for h in reversed(state.history) if "steps" in h), None)
        self.progress.epoch_begin(epoch, known, state.step_in_epoch)
        window_start, window_steps = time.time(), 0
        for batch in self._batches(epoch):
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
        self.progress.epoch_end()

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
        kept = (f"the last good checkpoint, {latest} (step {int(latest.name.split('-')[1])}), "
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

    def _save(self) -> None:
        if not weights_finite(self.model):
            self._stopped(
                f"the weights stopped being finite at step {self.state.global_step}; the last "
                f"good checkpoint, {self.store.latest()}, is kept")
        self.store.save(self.model, self.optimizer, self.state)

    def _end_epoch(self, epoch: int) -> None:
        state, cfg = self.state, self.cfg
        steps = state.step_in_epoch
        entry = {"epoch": epoch + 1, "steps": steps}
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
        if self.evaluate_here:
            result = evaluate(self.model, cfg, verbose=self.verbose, predict=self.predict)
            if self.verbose:
                print(f"epoch {epoch + 1} validation: {format_metrics(result, cfg.eval.top_k)}",
                      file=sys.stderr)
            entry["validation"] = result
            self.boards.scalars("validation", numbers(result), state.global_step)
        self.boards.flush()
        state.history.append(entry)
        state.epoch, state.step_in_epoch, state.epoch_sums = epoch + 1, 0, {}
        if self.store.writer:
            write_json(self.metrics_path, {"epochs": state.history})
        self._save()


def numbers(result: Dict) -> Dict[str, float]:
    """The plain numbers of an evaluation result (for TensorBoard)."""
    return {k: v for k, v in result.items()
            if isinstance(v, (int, float)) and k not in ("seconds", "num_videos")}


def write_json(path: Path, payload) -> None:
    """Writes JSON under a temporary name, then renames it (never half a file)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=float))
    tmp.replace(path)
