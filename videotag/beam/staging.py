"""Pipeline outputs written aside and swapped in only when the pipeline has succeeded.

A pipeline writes every file into a staging folder beside its output (a hidden
sibling, `.<name>.staging-<run id>`, on the same file system, so a rename moves
it), and the launcher commits it after the last worker has finished:

- a folder output (`batch-extract --output_dir`): the previous folder is renamed
  aside, the staging folder renamed into its place, the previous one deleted;
- a prefix output (`batch-predict --output_prefix=runs/pred/val`): every staged
  `val-SSSSS-of-NNNNN.jsonl` (and `val.failed.jsonl`, `val.summary.json`) is renamed
  into place, then the previous run's files of that prefix that the new run did not
  replace (other shard counts) are deleted.

So the output holds one run's files: a re-run never mixes its shards with the
previous run's, and a run that fails leaves the previous output as it was (its
staging folder is deleted). The commit itself is a few renames (milliseconds on a
local disk; on object stores such as GCS a rename is a copy and a delete per file).
Every operation goes through `tf.io.gfile`, so any TensorFlow file system works.
"""

from __future__ import annotations

import posixpath
import uuid
from typing import List

from videotag.errors import DataError

STAGING = ".staging-"


def _split(path: str):
    path = path.rstrip("/")
    return posixpath.dirname(path) or ".", posixpath.basename(path)


class StagedOutput:
    """The staging folder of one run and its commit.

    Args:
        target: the output folder (`kind="folder"`) or file prefix (`kind="prefix"`).
        kind: "folder" or "prefix".
        owned: for a folder, a file whose presence marks a folder this command wrote
            before (a folder without it and not empty is never replaced).
    """

    def __init__(self, target: str, kind: str, owned: str = ""):
        import tensorflow as tf

        if kind not in ("folder", "prefix"):
            raise ValueError(f"kind must be 'folder' or 'prefix', got {kind!r}")
        if not target or target.endswith("/") and kind == "prefix":
            raise DataError(f"output prefix '{target}' must name files, e.g. runs/pred/val")
        self.target, self.kind, self.owned = target.rstrip("/"), kind, owned
        self.parent, self.name = _split(self.target)
        if kind == "folder":
            self._check_replaceable()
        self.run_id = uuid.uuid4().hex[:12]
        self.folder = posixpath.join(self.parent, f".{self.name}{STAGING}{self.run_id}")
        tf.io.gfile.makedirs(self.folder)

    def _check_replaceable(self) -> None:
        import tensorflow as tf

        if not tf.io.gfile.exists(self.target):
            return
        if not tf.io.gfile.isdir(self.target):
            raise DataError(f"output folder {self.target} is a file")
        if tf.io.gfile.listdir(self.target) and not tf.io.gfile.exists(
                posixpath.join(self.target, self.owned)):
            raise DataError(f"output folder {self.target} holds files that this command did not "
                            f"write (no {self.owned}): give a new or empty folder")

    def path(self, name: str) -> str:
        """Where the pipeline writes `name` (a file name, or a shard prefix)."""
        return posixpath.join(self.folder, name)

    @property
    def prefix(self) -> str:
        """The staged form of a prefix output: its files' common start."""
        return self.path(self.name)

    def final(self, staged: str) -> str:
        """The committed path of a staged file."""
        if self.kind == "folder":
            return posixpath.join(self.target, posixpath.relpath(staged, self.folder))
        return posixpath.join(self.parent, posixpath.relpath(staged, self.folder))

    def files(self) -> List[str]:
        """The staged files (Beam's own temporary folders excluded)."""
        import tensorflow as tf

        out = []
        for root, _, names in tf.io.gfile.walk(self.folder):
            if "/beam-temp-" in f"/{posixpath.relpath(root, self.folder)}":
                continue
            out.extend(posixpath.join(root, n) for n in names)
        return sorted(out)

    def commit(self, previous_patterns: List[str] = ()) -> List[str]:
        """Moves the staged files into place and removes the previous run's.

        Args:
            previous_patterns: for a prefix output, globs (relative to the prefix's
                folder) of the files a previous run of this command left, e.g.
                `val-?????-of-?????.jsonl`; those the new run did not overwrite are
                deleted.

        Returns:
            The committed files.
        """
        import tensorflow as tf

        if self.kind == "folder":
            committed = [self.final(f) for f in self.files()]
            aside = None
            if tf.io.gfile.exists(self.target):
                aside = posixpath.join(self.parent, f".{self.name}.previous-{self.run_id}")
                tf.io.gfile.rename(self.target, aside)
            tf.io.gfile.rename(self.folder, self.target)
            if aside is not None:
                tf.io.gfile.rmtree(aside)
            return committed
        staged = self.files()
        committed = [self.final(f) for f in staged]
        old = set()
        for pattern in previous_patterns:
            old.update(tf.io.gfile.glob(posixpath.join(self.parent, pattern)))
        for src, dst in zip(staged, committed):
            tf.io.gfile.rename(src, dst, overwrite=True)
        for stale in sorted(old - set(committed)):
            tf.io.gfile.remove(stale)
        tf.io.gfile.rmtree(self.folder)
        return committed

    def abort(self) -> None:
        """Deletes the staging folder (the previous output stays as it was)."""
        import tensorflow as tf

        if tf.io.gfile.exists(self.folder):
            tf.io.gfile.rmtree(self.folder)
