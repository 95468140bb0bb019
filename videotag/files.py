"""Output files that appear only when complete."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import IO, Iterator, Optional


@contextlib.contextmanager
def open_output(path: Optional[str]) -> Iterator[IO[str]]:
    """A text file to write `path` through (standard output when None).

    The file is written under `<path>.tmp` and renamed when the block ends without
    an error; otherwise the temporary file is removed: a failed run never leaves a
    partial file.
    """
    if not path:
        yield sys.stdout
        return
    tmp = f"{path}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as out:
            yield out
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
