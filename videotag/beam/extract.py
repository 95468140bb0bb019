"""Videos -> YT8M frame-level record shards, as a Beam pipeline.

Each worker builds the `videotag.extraction.Extractor` of the settings once (its
networks, seeded as in `videotag extract`, and the PCA) and turns one video at a
time into the record `videotag extract` writes for it: the same decoding, networks,
PCA, quantization and record. A video on a remote file system (`gs://...`) is copied
to the worker first; remote weights and PCA files are copied once per worker.

The launcher lists the videos first (folders, globs, manifests: the checks of
`videotag extract` before any work: missing inputs, bad manifest lines, duplicate
ids) and writes them to a JSON Lines file that the pipeline reads in parallel, so
the job's description stays small for millions of videos.

Output folder (committed when the pipeline has succeeded, see `staging`):
    part-SSSSS-of-NNNNN.tfrecord   the records, in no particular order
    failed.jsonl                   dead letters: {"path", "reason"} per failed video
    extraction.yaml                the settings (`videotag predict --videos` reads them)
    summary.json                   the run's counts (`run.BatchSummary`)
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import posixpath
import tempfile
from typing import Iterator, List

import apache_beam as beam

from videotag.beam.failures import counter, dead_letter
from videotag.extraction.config import CONFIG_FILE, ExtractionConfig
from videotag.extraction.inputs import VideoItem

DEAD = "dead"
SHARDS, FAILED, SUMMARY, ITEMS = "part", "failed.jsonl", "summary.json", "inputs.jsonl"


def is_remote(path: str) -> bool:
    return "://" in path


def local_copy(path: str, folder: str) -> str:
    """A local copy of a remote file (and of its checkpoint companions `path.*`)."""
    import tensorflow as tf

    for source in [path] + [p for p in tf.io.gfile.glob(path + ".*") if p != path]:
        tf.io.gfile.copy(source, os.path.join(folder, posixpath.basename(source)),
                         overwrite=True)
    return os.path.join(folder, posixpath.basename(path))


def localized(cfg: ExtractionConfig, folder: str) -> ExtractionConfig:
    """`cfg` with its remote weights and PCA files copied into local `folder`."""
    import tensorflow as tf

    from videotag.extraction.pca import FILES

    cfg = copy.deepcopy(cfg)
    for key in ("backbone_weights", "audio_weights"):
        if is_remote(getattr(cfg, key)):
            setattr(cfg, key, local_copy(getattr(cfg, key), folder))
    for name, path in cfg.pca.items():
        if not is_remote(path):
            continue
        if path.endswith(".npz"):
            cfg.pca[name] = local_copy(path, folder)
            continue
        target = os.path.join(folder, f"pca_{name}")
        os.makedirs(target, exist_ok=True)
        for file in FILES:
            if tf.io.gfile.exists(f"{path.rstrip('/')}/{file}"):
                local_copy(f"{path.rstrip('/')}/{file}", target)
        cfg.pca[name] = target
    return cfg


class ExtractVideo(beam.DoFn):
    """VideoItem (as a JSON line) -> its serialized record; a failed video -> a dead letter."""

    def __init__(self, cfg: ExtractionConfig):
        self.cfg = cfg

    def setup(self):
        from videotag.extraction import Extractor

        self.scratch = tempfile.mkdtemp(prefix="videotag-extract-")
        self.extractor = Extractor(localized(self.cfg, self.scratch))
        self.extracted, self.failed = counter("videos_extracted"), counter("videos_failed")
        self.frames, self.no_audio = counter("frames"), counter("videos_without_audio")

    def teardown(self):
        import shutil

        shutil.rmtree(getattr(self, "scratch", ""), ignore_errors=True)

    def process(self, line: str) -> Iterator:
        from videotag.data.writer import frame_example
        from videotag.extraction.pipeline import failure_message

        item = VideoItem(**json.loads(line))
        local = item.path
        try:
            if is_remote(item.path):
                local = local_copy(item.path, self.scratch)
            decoded = self.extractor.decode(local)
        except Exception as exc:  # a dead letter; the run goes on
            self.failed.inc()
            reason = failure_message(item, exc).replace(local, item.path)
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(item.path, reason))
            return
        finally:
            if local != item.path and os.path.exists(local):
                os.remove(local)
        features = self.extractor.features(decoded)
        record = frame_example(item.video_id, item.labels, features, id_key=self.cfg.id_key,
                               title=item.title)
        self.extracted.inc()
        self.frames.inc(len(decoded.video.frames))
        if decoded.no_audio:
            self.no_audio.inc()
        yield record.SerializeToString()


def write_inputs(items: List[VideoItem], path: str) -> None:
    """The videos to extract, one JSON object per line (the pipeline's input)."""
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "w") as f:
        for item in items:
            f.write(json.dumps(dataclasses.asdict(item), ensure_ascii=False) + "\n")


def save_settings(cfg: ExtractionConfig, path: str) -> None:
    """`extraction.yaml`, as `ExtractionConfig.save` writes it, through tf.io.gfile."""
    import tensorflow as tf
    import yaml

    with tf.io.gfile.GFile(path, "w") as f:
        f.write(yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def build(cfg: ExtractionConfig, items_file: str, folder: str, num_shards: int, pipeline) -> None:
    """Adds the extraction of the videos listed in `items_file` to `pipeline`, writing
    into the (staging) `folder`."""
    from apache_beam.io.textio import ReadFromText, WriteToText
    from apache_beam.io.tfrecordio import WriteToTFRecord

    out = (pipeline
           | "Videos" >> ReadFromText(items_file)
           | "Spread" >> beam.Reshuffle()
           | "Extract" >> beam.ParDo(ExtractVideo(cfg)).with_outputs(DEAD, main="records"))
    out.records | "Write" >> WriteToTFRecord(posixpath.join(folder, SHARDS),
                                             file_name_suffix=".tfrecord", num_shards=num_shards)
    out[DEAD] | "WriteFailures" >> WriteToText(posixpath.join(folder, FAILED), num_shards=1,
                                               shard_name_template="")


def run_extraction(cfg: ExtractionConfig, inputs: List[str], output_dir: str, options,
                   num_shards: int = 0):
    """Extracts the videos of `inputs` into `output_dir` (replacing a previous
    batch-extract output there once the pipeline has succeeded).

    Returns:
        The run's `BatchSummary`.

    Raises:
        ConfigError / DataError: bad settings or inputs (before any work), or a folder
            that batch-extract did not write.
    """
    from videotag.beam.options import workers
    from videotag.beam.run import BatchSummary, run_pipeline
    from videotag.beam.staging import StagedOutput
    from videotag.extraction import list_videos
    from videotag.extraction.extractor import check_pca_settings

    cfg.validate()
    check_pca_settings(cfg)
    items, ignored = list_videos(inputs, cfg.label_file)
    staged = StagedOutput(output_dir, "folder", owned=SUMMARY)
    items_file = staged.path(ITEMS)
    try:
        write_inputs(items, items_file)
        save_settings(cfg, staged.path(CONFIG_FILE))
    except BaseException:
        staged.abort()
        raise
    summary = BatchSummary("batch-extract", workers(options))
    summary.counts["ignored_files"] = len(ignored)
    return run_pipeline(lambda p: build(cfg, items_file, staged.folder, num_shards, p), options,
                        staged, summary, dead_letters=staged.path(FAILED),
                        summary_file=staged.path(SUMMARY), inputs=[items_file])
