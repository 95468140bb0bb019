"""Segment predictions: every segment's top tags, written as a per-video timeline in
JSON Lines and as the YT8M 2019 Kaggle submission (`Class,Segments`).

Batches come from a model directory or from a SavedModel's `predict_segments`
signature (`videotag.inference.predict`); both are shaped like that signature's
outputs. One batch is held at a time; the submission needs the top N segments of
each class (`videotag.evaluation.segments.SegmentRanking`), and is written at the
end.
"""

from __future__ import annotations

import json
from typing import IO, Iterable, Iterator, List, NamedTuple, Optional, Tuple

import numpy as np

from videotag.evaluation.segments import DEFAULT_TOP_N, SegmentRanking
from videotag.files import open_output
from videotag.inference.predict import (
    Batch,
    _text,
    model_dir_batches,
    rows,
    saved_model_batches,
)
from videotag.progress import Progress

Tag = Tuple[int, str, float]  # (class id, class name, probability)


class Segment(NamedTuple):
    """One segment: start and end time in seconds, and its top tags, descending."""

    start: int
    end: int
    tags: List[Tag]


class SegmentPrediction(NamedTuple):
    """One video's prediction: its id, its video-level top tags and its segments."""

    video_id: str
    tags: List[Tag]
    segments: List[Segment]


def segment_rows(batches: Iterable[Batch], top_k: int = 20) -> Iterator[SegmentPrediction]:
    """`SegmentPrediction`s of `predict_segments`-shaped batches, at most `top_k` tags
    per video and per segment."""
    for out in batches:
        videos = rows([out], top_k)
        for i, video in enumerate(videos):
            segments = []
            for j in range(int(out["num_segments"][i])):
                tags = [(int(c), _text(n), float(p)) for c, n, p in zip(
                    out["segment_class_indexes"][i, j][:top_k],
                    out["segment_class_names"][i, j][:top_k],
                    out["segment_predictions"][i, j][:top_k])]
                segments.append(Segment(int(out["segment_start_times"][i, j]),
                                        int(out["segment_end_times"][i, j]), tags))
            yield SegmentPrediction(video.video_id, video.tags, segments)


def predict_segments_from_model_dir(model_dir: str, pattern: str, top_k: int = 20,
                                    batch_size: Optional[int] = None,
                                    on_bad_record: Optional[str] = None,
                                    segment_label_file: Optional[str] = None
                                    ) -> Iterator[SegmentPrediction]:
    """Segment predictions of a trained model directory (Keras model, validated
    records); `segment_label_file` replaces the run's segment classes."""
    return segment_rows(model_dir_batches(model_dir, pattern, top_k, batch_size, on_bad_record,
                                          segments=True,
                                          segment_label_file=segment_label_file), top_k)


def predict_segments_from_saved_model(path: str, pattern: str, top_k: int = 20,
                                      batch_size: int = 256) -> Iterator[SegmentPrediction]:
    """Segment predictions of an exported SavedModel's `predict_segments` signature."""
    return segment_rows(saved_model_batches(path, pattern, batch_size, "predict_segments"),
                        top_k)


def timeline_entry(row: SegmentPrediction, threshold: float = 0.0) -> dict:
    """The JSON Lines object of one video: `{"id", "duration", "tags": [{"id",
    "name", "probability"}, ...], "segments": [{"start", "end", "tags": [...]}, ...]}`
    (times in seconds; tags below `threshold` left out)."""
    def tags(values):
        return [{"id": c, "name": n, "probability": round(p, 6)} for c, n, p in values
                if p >= threshold]

    return {"id": row.video_id,
            "duration": max((s.end for s in row.segments), default=0),
            "tags": tags(row.tags or []),
            "segments": [{"start": s.start, "end": s.end, "tags": tags(s.tags)}
                         for s in row.segments]}


def write_segment_predictions(predictions: Iterable[SegmentPrediction],
                              submission_file: Optional[str] = None,
                              timeline_file: Optional[str] = None,
                              top_n: int = DEFAULT_TOP_N, threshold: float = 0.0,
                              verbose: bool = True, progress_seconds: float = 10.0) -> int:
    """Writes the timeline (JSON Lines, one video a line: `timeline_entry`) and the
    Kaggle submission: header `Class,Segments`, then per class (by id) its id and
    its top `top_n` segments as `<video id>:<start time>`, best first (ranked as
    `SegmentRanking` ranks: score, then video id, then start). A segment enters a
    class's list when the class is among the segment's top k tags, as in the YT8M
    starter code's `inference.py`. Each file appears only when complete.

    Args:
        predictions: the rows.
        submission_file: path of the submission (None: not written).
        timeline_file: path of the timeline (None: not written).
        top_n: segments per class in the submission.
        threshold: the timeline leaves out tags below it (the submission does not).
        verbose, progress_seconds: progress lines on stderr.

    Returns:
        The number of videos.
    """
    ranking = SegmentRanking(top_n=top_n) if submission_file else None
    progress = Progress("predicted", every=progress_seconds if verbose else 0)
    with open_output(timeline_file) if timeline_file else _nowhere() as timeline:
        for row in predictions:
            if timeline is not None:
                timeline.write(json.dumps(timeline_entry(row, threshold), ensure_ascii=False)
                               + "\n")
            if ranking is not None:
                _rank(ranking, row)
            progress.add()
    progress.close()
    if ranking is not None:
        with open_output(submission_file) as out:
            write_submission(ranking, out)
    return progress.count


def write_submission(ranking: SegmentRanking, out: IO[str]) -> int:
    """Writes a ranking as the Kaggle submission; returns the number of classes."""
    out.write("Class,Segments\n")
    count = 0
    for cls, segments in ranking.submission_rows():
        out.write(f"{cls},{' '.join(segments)}\n")
        count += 1
    return count


def _rank(ranking: SegmentRanking, row: SegmentPrediction) -> None:
    """Adds a video's segment tags to a ranking (growing it for larger class ids)."""
    pairs = [(c, p, s.start) for s in row.segments for c, _, p in s.tags]
    if not pairs:
        return
    classes, scores, starts = (np.array(v) for v in zip(*pairs))
    ids = np.full(len(pairs), row.video_id.encode("utf-8"))
    ranking.add_candidates(classes, scores, ids, starts, segments=len(row.segments), videos=1)


class _nowhere:
    """A context manager that gives None (no file)."""

    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
