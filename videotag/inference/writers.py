"""Writing predictions as CSV (the Kaggle YT8M submission), JSON (the VideoTag list)
or JSON Lines, one row at a time, to a file that appears only when complete."""

from __future__ import annotations

import json
from typing import IO, Iterable, List, Optional, Tuple

from videotag.files import open_output
from videotag.inference.predict import Prediction
from videotag.progress import Progress

FORMATS = ("csv", "json", "jsonl")


def _tags_or_category(row: Prediction) -> List[Tuple[int, str, float]]:
    """The (id, name, probability) list the CSV and VideoTag JSON hold: the tags, or
    the category for a model without tags."""
    if row.tags is not None:
        return row.tags
    return [row.category] if row.category is not None else []


def _entry(cid: int, name: str, prob: float, keys=("id", "name", "probability")) -> dict:
    return dict(zip(keys, (cid, name, round(prob, 6))))


def json_line(row: Prediction, threshold: float = 0.0) -> str:
    """One video's JSON Lines line (without the line break): `{"id", "tags": [{"id",
    "name", "probability"}, ...], "category": {"id", "name", "probability"}}` (`tags`
    and `category` only when the model has that head; tags below `threshold` left
    out, the category always kept)."""
    entry = {"id": row.video_id}
    if row.tags is not None:
        entry["tags"] = [_entry(*t) for t in row.tags if t[2] >= threshold]
    if row.category is not None:
        entry["category"] = _entry(*row.category)
    return json.dumps(entry, ensure_ascii=False)


def write_predictions(predictions: Iterable, out: IO[str], fmt: str, threshold: float = 0.0,
                      verbose: bool = True, progress_seconds: float = 10.0) -> int:
    """Writes predictions in one of three formats; returns the number of videos.

    - `csv`, the Kaggle YT8M submission: header `VideoId,LabelConfidencePairs`, then
      `id,class score class score ...`.
    - `json`, the VideoTag list (seed 002): `[[id, {"class_name", "probability",
      "class_id"}, ...], ...]`.
    - `jsonl`, one object per line: `{"id", "tags": [{"id", "name", "probability"},
      ...], "category": {"id", "name", "probability"}}` (`tags` and `category` only
      when the model has that head).

    The CSV and JSON carry the tags (for a model without tags: its category). Tags
    with probability below `threshold` are left out, after the top-k cut; the
    category is always kept. Rows may be `Prediction`s or (id, tags) pairs.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown prediction format '{fmt}' (valid: {', '.join(FORMATS)})")
    progress = Progress("predicted", every=progress_seconds if verbose else 0)
    if fmt == "csv":
        out.write("VideoId,LabelConfidencePairs\n")
    elif fmt == "json":
        out.write("[")
    for row in predictions:
        row = Prediction(*row)
        if row.tags is not None:
            row = row._replace(tags=[t for t in row.tags if t[2] >= threshold])
        if fmt == "csv":
            pairs = " ".join(f"{cid} {prob:.6f}" for cid, _, prob in _tags_or_category(row))
            out.write(f"{row.video_id},{pairs}\n")
        elif fmt == "json":
            entry = [row.video_id] + [
                {"class_name": name, "probability": round(prob, 6), "class_id": cid}
                for cid, name, prob in _tags_or_category(row)]
            out.write(("\n" if progress.count == 0 else ",\n") + json.dumps(entry, ensure_ascii=False))
        else:
            out.write(json_line(row) + "\n")
        progress.add()
    progress.close()
    if fmt == "json":
        out.write("\n]\n")
    return progress.count


def write_predictions_file(predictions: Iterable, output_file: Optional[str], fmt: str,
                           threshold: float = 0.0, verbose: bool = True,
                           progress_seconds: float = 10.0) -> int:
    """`write_predictions` to a file (standard output when None).

    The file (on any file system of TensorFlow) is written under a temporary name and
    swapped in when complete (`videotag.files.open_output`): a failed run never leaves
    a partial file, and an earlier file of that name stays as it was.
    """
    with open_output(output_file, what="predictions file") as out:
        return write_predictions(predictions, out, fmt, threshold, verbose, progress_seconds)
