"""Training checkpoints: model weights, optimizer state and the run's position.

Layout, in `<model_dir>/checkpoints/` (any file system `tf.io.gfile` reaches):
    ckpt-000000120/
        model.keras        the model (Keras format; `model.load_weights` reads it)
        optimizer.npz      the optimizer's variables (step count, moments, loss scale)
        state.json         step, epoch, step in the epoch, history of the epochs
        manifest.json      size and SHA-256 of the three files; written last

Writing: the free space is checked first against the checkpoint's size (known from
the variables' shapes); the files are written into a hidden temporary directory,
read back into the manifest, and the directory is then moved to its final name
(`videotag.files.replace_dir`: an atomic rename where the file system has one; emulated
elsewhere, file by file with the manifest last, and checked against the manifest
once moved: write, verify, swap). A
failed write (the disk filled up, a quota, a permission) removes the temporary
directory and raises `StorageError` naming the path; the previous checkpoint is
untouched. A run killed while saving leaves at most the temporary directory, which
the next run removes.

The weights go through Keras's `.keras` writer, which builds its HDF5 file in
memory and writes it with Python: when the disk fills up, that is a Python
`OSError`. (`model.save_weights` to a `.weights.h5` file lets the HDF5 library
write to disk itself; after a failed write, Keras leaves that HDF5 file open, and
the library crashes with a segmentation fault when the process exits.)

Reading: each checkpoint is checked against its manifest before it is loaded;
`restore_latest` reports a damaged checkpoint (truncated, altered, missing file, no
manifest) and goes back to the newest intact one. Nothing is ever deleted on the
way: damaged checkpoints stay until the run's own saves replace or prune them.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from videotag import filesystem, files
from videotag.errors import ModelError, StorageError
from videotag.filesystem import join
from videotag.training import manifest, storage

MODEL_FILE = "model.keras"
OPTIMIZER_FILE = "optimizer.npz"
STATE_FILE = "state.json"
MANIFEST_FILE = manifest.MANIFEST_FILE
DATA_FILES = (MODEL_FILE, OPTIMIZER_FILE, STATE_FILE)
_NAME = re.compile(r"^ckpt-(\d{9})$")
_TEMPORARY = re.compile(r"^\.ckpt-(\d{9})\.(tmp|old)-\d+$")
# bytes a checkpoint takes beyond its variables' values: the HDF5 headers of each
# variable (about 2.2 KB measured), the zip and npz entries, the model's config
_PER_VARIABLE = 8 << 10
_FIXED = 1 << 20


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


def checkpoint_step(path: str) -> int:
    """The step of a checkpoint directory (`.../ckpt-000000120` -> 120)."""
    return int(filesystem.basename(path).split("-")[1])


def variable_bytes(variables) -> int:
    """Bytes of the values of `variables` (from their shapes and dtypes)."""
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def needed_bytes(model: keras.Model, optimizer=None) -> int:
    """An upper bound of the bytes a checkpoint of `model` and `optimizer` takes."""
    variables = list(model.weights) + (list(optimizer.variables) if optimizer else [])
    return variable_bytes(variables) + _PER_VARIABLE * len(variables) + _FIXED


class CheckpointStore:
    """The checkpoints of one model directory.

    Args:
        directory: `<model_dir>/checkpoints` (a local path or a `scheme://` path).
        keep: how many checkpoints to keep (the newest).
        writer: whether this process writes (the chief worker); others only read.
        before_save: called before each save (the run lock checks that this run
            still holds the model directory); it may raise to prevent the save.
    """

    def __init__(self, directory, keep: int = 3, writer: bool = True,
                 before_save: Optional[Callable[[], None]] = None):
        self.directory = str(directory)
        self.keep = keep
        self.writer = writer
        self.before_save = before_save
        if writer:
            tf.io.gfile.makedirs(self.directory)
            self._clean_up()

    def _clean_up(self) -> None:
        """Removes what a run killed mid-save left; a checkpoint moved aside to be
        replaced (`.ckpt-N.old-*`) whose replacement never arrived is put back."""
        for name in tf.io.gfile.listdir(self.directory):
            match = _TEMPORARY.match(name.rstrip("/"))
            if not match:
                continue
            path = join(self.directory, name.rstrip("/"))
            final = join(self.directory, f"ckpt-{match.group(1)}")
            if (match.group(2) == "old" and not tf.io.gfile.exists(final)
                    and filesystem.has_atomic_rename(path)):
                files.replace_dir(path, final, what="checkpoint")
            else:
                filesystem.remove_quietly(path)

    def all(self) -> List[str]:
        """Checkpoint directories (by name, not checked), oldest first."""
        if not tf.io.gfile.isdir(self.directory):
            return []
        names = [n.rstrip("/") for n in tf.io.gfile.listdir(self.directory)]
        return [join(self.directory, n) for n in sorted(names) if _NAME.match(n)]

    def path_of(self, step: int) -> str:
        """The directory of the checkpoint of `step` (whether it exists or not)."""
        return join(self.directory, f"ckpt-{step:09d}")

    def latest(self) -> Optional[str]:
        """The newest checkpoint directory, or None (not checked: see
        `restore_latest`)."""
        found = self.all()
        return found[-1] if found else None

    def save(self, model: keras.Model, optimizer, state: RunState) -> Optional[str]:
        """Writes a checkpoint of the current step and prunes old ones.

        Returns:
            The checkpoint's path (None in a process that does not write).

        Raises:
            StorageError: not enough free space, or the write failed; the previous
                checkpoints are intact and the temporary files removed.
        """
        if not self.writer:
            return None
        if self.before_save is not None:
            self.before_save()
        final = self.path_of(state.global_step)
        previous = self.latest()
        kept = (f"the previous checkpoint, {previous}, is intact" if previous
                else "no checkpoint had been saved before")
        storage.check_space(self.directory, needed_bytes(model, optimizer),
                            f"checkpoint {filesystem.basename(final)}", kept)
        tmp = join(self.directory, f".ckpt-{state.global_step:09d}.tmp-{os.getpid()}")
        filesystem.remove_quietly(tmp)
        with storage.failed_write(tmp, f"checkpoint {final}", f" (while writing {tmp}); the "
                                  f"temporary files were removed and {kept}"):
            self._write(tmp, model, optimizer, state)
            self._swap(tmp, final)
        self._prune(state.global_step)
        return final

    def _write(self, tmp: str, model: keras.Model, optimizer, state: RunState) -> None:
        tf.io.gfile.makedirs(tmp)
        model.save(join(tmp, MODEL_FILE))
        store: Dict[str, np.ndarray] = {}
        optimizer.save_own_variables(store)
        buffer = io.BytesIO()
        np.savez(buffer, **store)
        filesystem.write_in_place(join(tmp, OPTIMIZER_FILE), buffer.getvalue())
        filesystem.write_in_place(join(tmp, STATE_FILE), state.to_json().encode())
        filesystem.fsync(join(tmp, MODEL_FILE))  # Keras does not flush it
        filesystem.write_in_place(join(tmp, MANIFEST_FILE),
                                  manifest.build(tmp, DATA_FILES, state.global_step))
        filesystem.fsync(tmp)

    def _swap(self, tmp: str, final: str) -> None:
        """Moves the written checkpoint to its final name, replacing one of the same
        step (saved again at an epoch's end, or after a resume). With atomic renames:
        renames of files already read back into the manifest (one being replaced is
        moved aside first, and put back by `_clean_up` if the run dies between).
        Elsewhere (emulated, file by file, the manifest last): the moved checkpoint is
        checked against its manifest again."""
        if filesystem.has_atomic_rename(final):
            if not tf.io.gfile.exists(final):
                files.replace_dir(tmp, final, what="checkpoint")
                return
            old = join(self.directory, f".{filesystem.basename(final)}.old-{os.getpid()}")
            files.replace_dir(final, old, what="checkpoint")
            files.replace_dir(tmp, final, what="checkpoint")
            filesystem.remove_quietly(old)
            return
        if tf.io.gfile.exists(final):
            tf.io.gfile.remove(join(final, MANIFEST_FILE))  # no longer intact
            filesystem.remove_tree(final)
        files.replace_dir(tmp, final, last=(MANIFEST_FILE,), what="checkpoint")
        problems = manifest.problems(final)
        if problems:
            raise StorageError(f"{final}: read back after writing, {'; '.join(problems)}")

    def _prune(self, saved_step: int) -> None:
        """Keeps the newest `keep` checkpoints up to `saved_step`; newer ones (left
        damaged by an earlier run, to be replaced as this run passes their step)
        stay."""
        older = [p for p in self.all() if checkpoint_step(p) < saved_step]
        for stale in older[: max(0, len(older) - (self.keep - 1))]:
            filesystem.remove_quietly(stale)

    @staticmethod
    def restore(path, model: keras.Model, optimizer=None) -> RunState:
        """Checks a checkpoint against its manifest, then loads it into `model` (and
        `optimizer`, built) and returns its state.

        Raises:
            StorageError: the checkpoint is damaged (truncated, altered or missing
                files, no manifest).
            ModelError: the checkpoint does not fit the model or the optimizer (a
                different model config, or a different mixed-precision setting).
        """
        path = str(path)
        problems = manifest.problems(path)
        if problems:
            raise StorageError(f"checkpoint {path} is damaged: {'; '.join(problems)}")
        try:
            model.load_weights(join(path, MODEL_FILE))
        except (ValueError, OSError) as exc:
            raise ModelError(f"{path}: the checkpoint does not fit the model ({exc})") from None
        if optimizer is not None:
            data = filesystem.read_bytes(join(path, OPTIMIZER_FILE))
            with np.load(io.BytesIO(data)) as arrays:
                store = {k: arrays[k] for k in arrays.files}
            if len(store) != len(optimizer.variables):
                raise ModelError(
                    f"{path}: the optimizer state has {len(store)} variables, the optimizer "
                    f"{len(optimizer.variables)} (was train.optimizer, train.ema_decay or "
                    "train.mixed_precision changed? float16 adds a loss scale)"
                )
            optimizer.load_own_variables(store)
        return RunState.from_json(filesystem.read_bytes(join(path, STATE_FILE)).decode())

    def restore_latest(self, model: keras.Model, optimizer=None,
                       report: Optional[Callable[[str], None]] = None
                       ) -> Tuple[Optional[str], Optional[RunState]]:
        """Restores the newest intact checkpoint, reporting each damaged newer one.

        Args:
            report: called with a message per damaged checkpoint passed over;
                default: printed to stderr.

        Returns:
            (path, state), or (None, None) when there is no checkpoint at all.

        Raises:
            StorageError: there are checkpoints and none is intact (nothing is
                deleted; the message lists what is wrong with each).
            ModelError: the newest intact checkpoint does not fit the model.
        """
        report = report or (lambda message: print(f"warning: {message}", file=sys.stderr))
        found = self.all()
        damaged = []
        for path in reversed(found):
            try:
                state = self.restore(path, model, optimizer)
            except StorageError as exc:
                damaged.append(str(exc))
                report(f"{exc}; trying the one before")
                continue
            return path, state
        if not found:
            return None, None
        raise StorageError(
            f"no intact checkpoint in {self.directory}: " + "; ".join(damaged) +
            ". Nothing was deleted: restore the files, or move the checkpoints away to "
            "start the run over"
        )
