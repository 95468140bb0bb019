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

import json
from typing import Dict, Iterable, List

from videotag.training import storage

MANIFEST_FILE = "manifest.json"
FORMAT = 1


def build(directory: str, names: Iterable[str], step: int) -> bytes:
    """The manifest (JSON bytes) of the files `names` of `directory`, read back."""
    files = {name: {"bytes": storage.size(storage.join(directory, name)),
                    "sha256": storage.sha256(storage.join(directory, name))}
             for name in names}
    return json.dumps({"format": FORMAT, "step": step, "files": files}, indent=1).encode()


def problems(directory: str) -> List[str]:
    """What is wrong with the checkpoint in `directory` against its manifest, one
    phrase each; empty when every file is there with its size and sum."""
    path = storage.join(directory, MANIFEST_FILE)
    if not storage.gfile.exists(path):
        return [f"it has no {MANIFEST_FILE} (a run stopped while writing it, or a "
                "checkpoint of a videotag before manifests)"]
    try:
        files: Dict[str, Dict] = json.loads(storage.read_bytes(path))["files"]
    except (ValueError, KeyError, TypeError):
        return [f"its {MANIFEST_FILE} is not a readable manifest"]
    found = []
    for name, expected in sorted(files.items()):
        file = storage.join(directory, name)
        if not storage.gfile.exists(file):
            found.append(f"{name} is missing")
            continue
        actual = storage.size(file)
        if actual != expected["bytes"]:
            found.append(f"{name} has {actual} bytes, the manifest says {expected['bytes']}")
        elif storage.sha256(file) != expected["sha256"]:
            found.append(f"{name} has the right size but not the manifest's SHA-256 "
                         "(its content changed)")
    return found
