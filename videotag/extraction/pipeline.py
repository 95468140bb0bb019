"""Videos -> YT8M frame-level records: the extraction run.

Decoding (PyAV, plus the log-mel front end) runs in `num_decoders` threads, up to
`prefetch` videos ahead of the networks, which run in the calling thread; records
keep the input order. A video that fails (not a video, corrupt, truncated, no audio
with missing_audio=error) is reported with its file and the reason, counted, and
the run goes on.

Output folder:
    part-00000.tfrecord, part-00000.ids, ...   shards and the ids they hold
    extraction.yaml                            the settings (a rerun must match)
    summary.json                               the counts of the last run
A shard is written under a temporary name; its `.ids` file is written (atomically)
before the shard is swapped into place, and a shard counts as done when both exist.
The folder may be on any file system of TensorFlow (`videotag.files`); a shard that
cannot be written (no space left) stops the run with `OutputError` naming it, and
the shards written before it stay done.
A rerun skips every video whose id is in a done shard, so an interrupted run loses
at most the shard it was writing.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import tensorflow as tf

from videotag import files
from videotag.errors import DataError
from videotag.output_checks import check_output_dir
from videotag.extraction import config as config_lib
from videotag.extraction.config import ExtractionConfig
from videotag.extraction.extractor import Extractor
from videotag.extraction.inputs import VideoItem, list_videos
from videotag.extraction.pca import Pca, PcaFitter
from videotag.progress import Progress

SHARD_PREFIX = "part"
_SHARD_FILE = re.compile(SHARD_PREFIX + r"-(\d+)\.(ids|tfrecord)")
# temporary files of an interrupted run: a shard being written, an ids file
_STALE = re.compile(r"\.?" + SHARD_PREFIX + r"-\d+\.(tfrecord\.tmp-\d+|ids\.tmp(-\d+)?)")
SUMMARY_FILE = "summary.json"
EXTRACTION_TEMPLATE = (
    "{label} {bar} {count}/{total} videos, {failed} failed, {rate:.2f} videos/s, {eta:.0f} s left")


@dataclass
class Summary:
    """What a run did.

    Attributes:
        extracted: videos written in this run.
        frames: frames of those videos.
        skipped: videos already in the output folder (a resumed run).
        failed: [path, reason] of every video that failed.
        no_audio: videos without an audio track (handled by missing_audio).
        ignored: files of input folders left out for their extension.
        shards: shards written in this run.
        seconds: wall time.
        decode_seconds: time spent decoding (summed over decoder threads).
        network_seconds: time spent in the CNN and VGGish.
    """

    extracted: int = 0
    frames: int = 0
    skipped: int = 0
    failed: List[List[str]] = field(default_factory=list)
    no_audio: List[str] = field(default_factory=list)
    ignored: List[str] = field(default_factory=list)
    shards: List[str] = field(default_factory=list)
    seconds: float = 0.0
    decode_seconds: float = 0.0
    network_seconds: float = 0.0

    def text(self, verb: str = "extracted") -> str:
        rate = self.extracted / self.seconds if self.seconds else 0.0
        parts = [f"{verb} {self.extracted} videos ({self.frames} frames) in "
                 f"{self.seconds:.1f} s ({rate:.2f} videos/s)"]
        if self.skipped:
            parts.append(f"{self.skipped} already done, skipped")
        if self.failed:
            parts.append(f"{len(self.failed)} failed")
        if self.no_audio:
            parts.append(f"{len(self.no_audio)} without audio")
        if self.ignored:
            parts.append(f"{len(self.ignored)} file(s) without a video extension ignored")
        return "; ".join(parts)


# ----------------------------------------------------------------- running


def decoded_in_order(items: Sequence[VideoItem], decode, workers: int,
                     prefetch: int) -> Iterator[Tuple[VideoItem, object]]:
    """Yields (item, decode(item.path) or the exception it raised), in input order,
    while up to `prefetch` videos are decoded ahead in `workers` threads."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
    pending: deque = deque()
    queue = iter(items)
    try:
        for item in queue:
            pending.append((item, pool.submit(decode, item.path)))
            if len(pending) >= max(prefetch, workers):
                break
        while pending:
            item, future = pending.popleft()
            try:
                result = future.result()
            except Exception as exc:  # reported per video; the run goes on
                result = exc
            following = next(queue, None)
            if following is not None:
                pending.append((following, pool.submit(decode, following.path)))
            yield item, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def failure_message(item: VideoItem, exc: BaseException) -> str:
    if isinstance(exc, DataError):
        return str(exc)
    return f"{item.path}: {type(exc).__name__}: {exc}"


def extraction_progress(total: int, label: str = "extracting", enabled: bool = True,
                        stream=None) -> Progress:
    """The progress of an extraction run over `total` videos: a bar on a terminal, a
    line every 10 s otherwise; `update(done, failed=...)` after each video."""
    progress = Progress(label, total=total, every=10.0, mode="auto" if enabled else "silent",
                        stream=stream, template=EXTRACTION_TEMPLATE, failed=0)
    progress.start()
    return progress


class ShardedOutput:
    """The output folder's shards: what is done, and writing new ones (on any file
    system of TensorFlow, through `videotag.files`)."""

    def __init__(self, folder: str | Path, videos_per_shard: int):
        from videotag.data.writer import RecordWriter  # noqa: F401  (fail early on import)

        self.folder = str(folder)
        check_output_dir(self.folder, "output folder")
        self.videos_per_shard = videos_per_shard
        names = tf.io.gfile.listdir(self.folder)
        for name in names:
            if _STALE.fullmatch(name):  # left by an interrupted run
                files.remove_quietly(files.join(self.folder, name))
        self.done: set = set()
        numbers = [-1]
        for name in names:
            match = _SHARD_FILE.fullmatch(name)
            if not match:
                continue
            numbers.append(int(match.group(1)))
            if match.group(2) == "ids" and f"{name[:-len('.ids')]}.tfrecord" in names:
                with tf.io.gfile.GFile(files.join(self.folder, name), "rb") as f:
                    self.done.update(f.read().decode("utf-8").split())
        self.next_number = max(numbers) + 1
        self.written: List[str] = []
        self._writer = None
        self._ids: List[str] = []

    def write(self, video_id: str, record) -> None:
        from videotag.data.writer import RecordWriter

        if self._writer is None:
            path = files.join(self.folder, f"{SHARD_PREFIX}-{self.next_number:05d}.tfrecord")
            self.next_number += 1
            self._writer = RecordWriter([path])
        self._writer.write(record)
        self._ids.append(video_id)
        if len(self._ids) >= self.videos_per_shard:
            self.finish_shard()

    def finish_shard(self) -> None:
        if self._writer is None:
            return
        path = self._writer.paths[0]
        files.write_text(path[:-len(".tfrecord")] + ".ids", "".join(f"{i}\n" for i in self._ids),
                         what="ids file")
        self._writer.close()  # swaps the shard into place: the shard is now done
        self.done.update(self._ids)
        self.written.append(path)
        self._writer, self._ids = None, []

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer, self._ids = None, []


def _report(progress: Progress, summary: Summary, item: VideoItem, exc: BaseException) -> None:
    message = failure_message(item, exc)
    summary.failed.append([item.path, message])
    progress.message(f"error: {message}")


def extract(cfg: ExtractionConfig, inputs: Sequence[str], output_dir: str,
            extractor: Optional[Extractor] = None, progress: bool = True,
            with_labels: bool = True) -> Summary:
    """Extracts the videos of `inputs` into YT8M frame-level records in `output_dir`.

    Args:
        cfg: the settings (written to `<output_dir>/extraction.yaml`).
        inputs: folders, video files and manifests (see `videotag.extraction.inputs`).
        output_dir: the output folder; videos already in it are skipped.
        extractor: a ready `Extractor` of `cfg` (built when None).
        progress: show a progress bar on stderr.
        with_labels: read the manifests' labels (False: records without labels).

    Returns:
        The run's `Summary` (also written to `<output_dir>/summary.json`).

    Raises:
        ConfigError: the folder holds features of other settings, or bad settings.
        DataError: an input is missing or a manifest line is bad (before any work).
    """
    start = time.time()
    items, ignored = list_videos(inputs, cfg.label_file, with_labels)
    config_lib.check_compatible(cfg, output_dir)
    extractor = extractor or Extractor(cfg)
    output = ShardedOutput(output_dir, cfg.videos_per_shard)
    cfg.save(files.join(str(output_dir), config_lib.CONFIG_FILE))
    summary = Summary(ignored=ignored)
    todo = [item for item in items if item.video_id not in output.done]
    summary.skipped = len(items) - len(todo)
    bar = extraction_progress(len(todo), enabled=progress)
    from videotag.data.writer import frame_example

    try:
        for item, features in _through_networks(todo, extractor, extractor.features, cfg,
                                                summary, bar):
            record = frame_example(item.video_id, item.labels, features, id_key=cfg.id_key,
                                   title=item.title)
            output.write(item.video_id, record)
        output.finish_shard()
    except BaseException:
        output.abort()
        raise
    finally:
        bar.close()
    summary.shards = output.written
    summary.seconds = time.time() - start
    files.write_text(files.join(str(output_dir), SUMMARY_FILE),
                     json.dumps(asdict(summary), indent=1), what="summary")
    return summary


def _through_networks(items, extractor, network, cfg, summary: Summary, bar):
    """Decodes `items` in parallel (in order) and yields `(item, network(decoded))` for
    each video that decoded; failures are reported and counted, and the summary's
    timings, counts and the progress bar follow every video."""
    for item, result in decoded_in_order(items, extractor.decode, cfg.num_decoders,
                                         cfg.prefetch):
        if isinstance(result, BaseException):
            _report(bar, summary, item, result)
        else:
            summary.decode_seconds += result.seconds
            began = time.perf_counter()
            output = network(result)
            summary.network_seconds += time.perf_counter() - began
            yield item, output
            summary.extracted += 1
            summary.frames += len(result.video.frames)
            if result.no_audio:
                summary.no_audio.append(item.path)
        bar.update(summary.extracted + len(summary.failed), failed=len(summary.failed))


def fit_pca(cfg: ExtractionConfig, inputs: Sequence[str], pca_dir: str,
            extractor: Optional[Extractor] = None,
            progress: bool = True) -> Tuple[Summary, Dict[str, Pca]]:
    """Fits the PCA (+ whitening) of every feature on the videos of `inputs`.

    Runs the networks over every sampled frame, accumulates the features' mean and
    covariance, keeps `feature_sizes` components, and writes them to
    `<pca_dir>/<feature name>/` (mean.npy, eigenvecs.npy, eigenvals.npy); sets
    `cfg.pca` to those folders (and, when given, `extractor`'s PCA to the fitted one).

    Returns:
        (summary, {feature name: Pca}).
    """
    start = time.time()
    items, ignored = list_videos(inputs, cfg.label_file)
    extractor = extractor or Extractor(cfg, with_pca=False)
    fitters = {name: PcaFitter(dim) for name, dim in extractor.dims.items()}
    summary = Summary(ignored=ignored)
    bar = extraction_progress(len(items), label="fitting PCA", enabled=progress)
    try:
        for _, embedded in _through_networks(items, extractor, extractor.embed, cfg, summary,
                                             bar):
            for name, values in embedded.items():
                if values is not None:
                    fitters[name].add(values)
    finally:
        bar.close()
    pcas = {}
    for name in cfg.feature_names:
        size = cfg.size_of(name)
        if fitters[name].count < size:
            print(f"warning: the {name} PCA is fitted on {fitters[name].count} frames, fewer "
                  f"than its {size} components: the last components are noise; fit on more "
                  "videos", file=sys.stderr)
        pcas[name] = fitters[name].fit(size)
        folder = files.join(str(pca_dir), name)
        pcas[name].save(folder)
        cfg.pca[name] = folder
    extractor.pca.update(pcas)
    summary.seconds = time.time() - start
    return summary, pcas
