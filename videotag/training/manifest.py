"""The manifest of a checkpoint: the size and SHA-256 of each of its files.

`manifest.json` is the last file written into a checkpoint, so its presence says
the checkpoint was written to the end, and its sums say the files are still what
was written (not truncated, altered, or missing since):

    {"format": 1, "step": 120,
     "files": {"model.keras": {"bytes": 9610954, "sha256": "5be1..."}, ...}}

The sums are those of the files as read back from the file system after writing,
so a write that the file system got wrong is caught too. `sha256sum` checks them
by hand.
"""

from __future__ import annotations

import hashlib
import json
from typing import Dict, Iterable, List

import tensorflow as tf

from videotag.filesystem import join, read_bytes, size

MANIFEST_FILE = "manifest.json"
FORMAT = 1
_CHUNK = 8 << 20


def sha256(path: str) -> str:
    """The SHA-256 of a file, read in chunks (hex digest)."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(str(path), "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build(directory: str, names: Iterable[str], step: int) -> bytes:
    """The manifest (JSON bytes) of the files `names` of `directory`, read back."""
    files = {name: {"bytes": size(join(directory, name)),
                    "sha256": sha256(join(directory, name))}
             for name in names}
    return json.dumps({"format": FORMAT, "step": step, "files": files}, indent=1).encode()


def problems(directory: str) -> List[str]:
    """What is wrong with the checkpoint in `directory` against its manifest, one
    phrase each; empty when every file is there with its size and sum."""
    path = join(directory, MANIFEST_FILE)
    if not tf.io.gfile.exists(path):
        return [f"it has no {MANIFEST_FILE} (a run stopped while writing it, or a "
                "checkpoint of a videotag before manifests)"]
    try:
        files: Dict[str, Dict] = json.loads(read_bytes(path))["files"]
    except (ValueError, KeyError, TypeError):
        return [f"its {MANIFEST_FILE} is not a readable manifest"]
    found = []
    for name, expected in sorted(files.items()):
        file = join(directory, name)
        if not tf.io.gfile.exists(file):
            found.append(f"{name} is missing")
            continue
        actual = size(file)
        if actual != expected["bytes"]:
            found.append(f"{name} has {actual} bytes, the manifest says {expected['bytes']}")
        elif sha256(file) != expected["sha256"]:
            found.append(f"{name} has the right size but not the manifest's SHA-256 "
                         "(its content changed)")
    return found
