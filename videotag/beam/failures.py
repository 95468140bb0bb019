"""How failures leave a Beam worker: dead letters, counters and stopping errors.

- A video or record that fails where the run goes on (a video that cannot be
  decoded; a bad record with `data.on_bad_record=skip`) becomes a dead letter: one
  JSON line `{"path", "record", "id", "reason"}` (`record` and `id` for records,
  when known) in the pipeline's dead-letter output, and a count in the Beam
  metric `videotag/<counter>`.
- An error that must stop the run (a bad record with `on_bad_record=error`, a
  corrupt shard) is raised in the worker as `WorkerError`, whose text carries the
  project error's message (base64, so quoting and the runner's additions cannot
  change it); the launcher recovers it from whatever exception the runner raises
  (`recover`), prints `error: <message>` and exits 1, as the single-machine tools do.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Optional

from videotag.errors import VideotagError

NAMESPACE = "videotag"
_MARK = "VIDEOTAG_WORKER_ERROR"
_FOUND = re.compile(_MARK + r"\[([A-Za-z0-9_=-]+)\]")


class WorkerError(Exception):
    """A project error raised inside a Beam worker, in a form that survives the runner.

    Args:
        error: the project error; or the text of one (the runner re-creates the
            exception with its own additions to the text).
    """

    def __init__(self, error):
        if isinstance(error, VideotagError):
            encoded = base64.urlsafe_b64encode(str(error).encode("utf-8")).decode("ascii")
            error = f"{_MARK}[{encoded}] {error}"
        super().__init__(error)


def recover(exc: BaseException) -> Optional[VideotagError]:
    """The project error a worker raised (`WorkerError`) inside the runner's `exc`, if any."""
    match = _FOUND.search(str(exc))
    cause = exc.__cause__ or exc.__context__
    if match is None and cause is not None and cause is not exc:
        return recover(cause)
    if match is None:
        return None
    return VideotagError(base64.urlsafe_b64decode(match.group(1)).decode("utf-8", "replace"))


def dead_letter(path: str, reason: str, record: Optional[int] = None,
                video_id: Optional[str] = None) -> str:
    """One dead-letter line (JSON, no line break)."""
    entry = {"path": path}
    if record is not None:
        entry["record"] = record
    if video_id is not None:
        entry["id"] = video_id
    entry["reason"] = reason
    return json.dumps(entry, ensure_ascii=False)


def counter(name: str):
    """The Beam counter `videotag/<name>` (incremented in workers, read by `run`)."""
    from apache_beam.metrics import Metrics

    return Metrics.counter(NAMESPACE, name)
