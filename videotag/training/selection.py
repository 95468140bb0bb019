"""What the trainer does with each validation: keep the best checkpoint, stop early.

Validations run after every epoch and, with `train.eval_every_steps`, every that
many steps (the epoch loop records each in `RunState.validations`). Then

- `train.keep_best`: a validation better than every one before it (by that metric,
  higher is better) saves a whole checkpoint (weights, optimizer state with the
  weight averages of `train.ema_decay`, run state) to `checkpoints/best/`, which
  keeps that one alone, apart from the rotating newest checkpoints;
- `train.early_stopping`: a validation that does not beat the best value so far
  by more than `min_delta` counts against the patience; `patience` of them in a
  row stop the run, with a message saying why.

Both records live in the run state saved with each checkpoint, so a resumed run
goes on counting where the stopped one was. The untrained model's validation
counts for neither.
"""

from __future__ import annotations

from typing import Dict, Optional

from videotag.training.checkpoints import CheckpointStore, RunState

BEST_DIR = "best"


class Selection:
    """Keep-best and early stopping over a run's validations.

    Args:
        cfg: the run's config (`train.keep_best`, `train.early_stopping`).
        state: the run's state (its `best`, `early_stopping` and `validations`).
        best_store: the store of `checkpoints/best/` (keeps 1).
    """

    def __init__(self, cfg, state: RunState, best_store: CheckpointStore):
        self.train = cfg.train
        self.state = state
        self.best_store = best_store

    @property
    def active(self) -> bool:
        """Whether anything here follows the validations."""
        return bool(self.train.keep_best or self.train.early_stopping.patience)

    def observe(self, result: Dict, epoch: int, model, optimizer) -> Optional[str]:
        """Follows the validation `result` of the current step in epoch `epoch`
        (from 1): saves the best checkpoint when it improves, and returns why the
        run must stop (None: go on).

        Call it when the state stands where a resumed run would go on from (after
        the end of an epoch: the next epoch), as the best checkpoint saves it.
        """
        state = self.state
        stop = self._early_stopping(result)
        metric = self.train.keep_best
        if metric:
            value = float(result[metric])
            if state.best is None or state.best.get("metric") != metric \
                    or value > state.best["value"]:
                state.best = {"metric": metric, "value": value, "step": state.global_step,
                              "epoch": epoch, "validation": result}
                self.best_store.save(model, optimizer, state)
        return stop

    def best_line(self, prefix: str = "best checkpoint") -> Optional[str]:
        """`best checkpoint: gap 0.8123 at step 96 (epoch 4),
        runs/x/checkpoints/best/ckpt-000000096`."""
        best = self.state.best
        latest = self.best_store.latest()
        if not best or latest is None:
            return None
        return (f"{prefix}: {best['metric']} {best['value']:.4f} at step {best['step']} "
                f"(epoch {best['epoch']}), {latest}")

    def stopped(self) -> Optional[str]:
        """Why the run stopped early, when the early-stopping record of the state
        still says so under the current patience (a resumed run with a larger
        `patience` goes on)."""
        rule, track = self.train.early_stopping, self.state.early_stopping
        if not rule.patience or not track or track.get("metric") != rule.metric:
            return None
        return self._message(track) if track["bad"] >= rule.patience else None

    def _early_stopping(self, result: Dict) -> Optional[str]:
        rule = self.train.early_stopping
        if not rule.patience:
            return None
        track = self.state.early_stopping
        if not track or track.get("metric") != rule.metric:
            track = self.state.early_stopping = {"metric": rule.metric, "best": None,
                                                 "best_step": None, "bad": 0}
        value = float(result[rule.metric])
        if track["best"] is None or value > track["best"] + rule.min_delta:
            track.update(best=value, best_step=self.state.global_step, bad=0)
            return None
        track["bad"] += 1
        return self._message(track) if track["bad"] >= rule.patience else None

    def _message(self, track: Dict) -> str:
        rule = self.train.early_stopping
        return (f"stopped early at step {self.state.global_step}: validation {rule.metric} "
                f"has not improved on {track['best']:.4f} (step {track['best_step']}) by more "
                f"than {rule.min_delta:g} in {track['bad']} validations "
                f"(train.early_stopping.patience={rule.patience})")
