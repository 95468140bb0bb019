"""Training checkpoints: model weights, optimizer state and the run's position.

Layout, in `<model_dir>/checkpoints/`:
    ckpt-000000120/
        model.weights.h5   the model's weights (Keras format; `model.load_weights`)
        optimizer.npz      the optimizer's variables (step count, moments, loss scale)
        state.json         step, epoch, step in the epoch, history of the epochs

Every write is atomic: a checkpoint is written into a hidden temporary directory,
flushed to disk, and renamed to its final name only when complete; the newest
complete directory is the latest checkpoint. A run killed while saving leaves at most
a temporary directory, which the next run removes, and the previous checkpoint stays
the latest.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import keras
import numpy as np
import tensorflow as tf

from videotag.errors import ModelError

WEIGHTS_FILE = "model.weights.h5"
OPTIMIZER_FILE = "optimizer.npz"
STATE_FILE = "state.json"
_NAME = re.compile(r"^ckpt-(\d{9})$")


@dataclass
class RunState:
    """Where a run is, as saved with each checkpoint.

    Attributes:
        global_step: optimisation steps done since the start of the run.
        epoch: the epoch in progress, from 0 (== epochs when the run is complete).
        step_in_epoch: steps done in that epoch.
        epoch_sums: running sums of the logged losses over the epoch's steps.
        history: one entry per completed epoch (losses, validation metrics).
        untrained_validation: the untrained model's metrics, when scored.
        validations: every validation of the run (step, epoch, metrics), those
            of `train.eval_every_steps` included (see `selection.py`).
        best: the best validation by `train.keep_best` (metric, value, step,
            epoch, validation), or None.
        early_stopping: the count of `train.early_stopping` (metric, best value
            and its step, validations without improvement since), or None.
    """

    global_step: int = 0
    epoch: int = 0
    step_in_epoch: int = 0
    epoch_sums: Dict[str, float] = field(default_factory=dict)
    history: List[Dict] = field(default_factory=list)
    untrained_validation: Optional[Dict] = None
    validations: List[Dict] = field(default_factory=list)
    best: Optional[Dict] = None
    early_stopping: Optional[Dict] = None

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, default=float)

    @classmethod
    def from_json(cls, text: str) -> "RunState":
        raw = json.loads(text)
        return cls(**{f.name: raw[f.name] for f in dataclasses.fields(cls) if f.name in raw})


def weights_finite(model: keras.Model) -> bool:
    """True when no weight of `model` is NaN or infinite."""
    return all(bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v))))
               for v in model.weights if "float" in str(v.dtype))


class CheckpointStore:
    """The checkpoints of one model directory.

    Args:
        directory: `<model_dir>/checkpoints`.
        keep: how many checkpoints to keep (the newest).
        writer: whether this process writes (the chief worker); others only read.
    """

    def __init__(self, directory: Path, keep: int = 3, writer: bool = True):
        self.directory = Path(directory)
        self.keep = keep
        self.writer = writer
        if writer:
            self.directory.mkdir(parents=True, exist_ok=True)
            for stale in self.directory.glob(".ckpt-*"):  # left by a run killed mid-save
                shutil.rmtree(stale, ignore_errors=True)

    def all(self) -> List[Path]:
        """Complete checkpoints, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [p for p in self.directory.iterdir() if p.is_dir() and _NAME.match(p.name)]
        return sorted(found, key=lambda p: p.name)

    def latest(self) -> Optional[Path]:
        """The newest complete checkpoint, or None."""
        found = self.all()
        return found[-1] if found else None

    def save(self, model: keras.Model, optimizer, state: RunState) -> Optional[Path]:
        """Writes a checkpoint of the current step (atomically) and prunes old ones.

        Returns:
            The checkpoint's path (None in a process that does not write).
        """
        if not self.writer:
            return None
        final = self.directory / f"ckpt-{state.global_step:09d}"
        tmp = self.directory / f".{final.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        model.save_weights(str(tmp / WEIGHTS_FILE))
        store: Dict[str, np.ndarray] = {}
        optimizer.save_own_variables(store)
        with open(tmp / OPTIMIZER_FILE, "wb") as f:
            np.savez(f, **store)
        (tmp / STATE_FILE).write_text(state.to_json())
        for path in tmp.iterdir():
            _fsync(path)
        _fsync(tmp)
        if final.exists():  # the same step saved again (e.g. after a resume)
            old = self.directory / f".{final.name}.old-{os.getpid()}"
            final.rename(old)
            tmp.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(final)
        _fsync(self.directory)
        for stale in self.all()[: -self.keep]:
            shutil.rmtree(stale, ignore_errors=True)
        return final

    @staticmethod
    def restore(path: Path, model: keras.Model, optimizer=None) -> RunState:
        """Loads a checkpoint into `model` (and `optimizer`, built) and returns its state.

        Raises:
            ModelError: the checkpoint does not fit the model or the optimizer (a
                different model config, or a different mixed-precision setting).
        """
        path = Path(path)
        try:
            model.load_weights(str(path / WEIGHTS_FILE))
        except (ValueError, OSError) as exc:
            raise ModelError(f"{path}: the checkpoint does not fit the model ({exc})") from None
        if optimizer is not None:
            with np.load(path / OPTIMIZER_FILE) as data:
                store = {k: data[k] for k in data.files}
            if len(store) != len(optimizer.variables):
                raise ModelError(
                    f"{path}: the optimizer state has {len(store)} variables, the optimizer "
                    f"{len(optimizer.variables)} (was train.optimizer, train.ema_decay or "
                    "train.mixed_precision changed? float16 adds a loss scale)"
                )
            optimizer.load_own_variables(store)
        return RunState.from_json((path / STATE_FILE).read_text())


def _fsync(path: Path) -> None:
    """Flushes a file or a directory entry to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
