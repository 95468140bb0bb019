"""Records -> predictions (JSON Lines) or embeddings (TFRecord), as Beam pipelines.

Both read the record shards (`ReadRecords`), run the exported SavedModel through
`RunInference` (`ServingModelHandler`) and write shards under an output prefix:

- predictions: `<prefix>-SSSSS-of-NNNNN.jsonl`, each line exactly what
  `videotag predict --format=jsonl` writes for that video (`json_line` of the
  `Prediction` that `videotag.inference` makes of the signature's outputs);
- embeddings: `<prefix>-SSSSS-of-NNNNN.tfrecord`, one `tf.train.Example` per video
  with `id` and the L2-normalised `embedding`, as `videotag embed --format=tfrecord`.

Beside them `<prefix>.failed.jsonl` holds the bad records skipped with
`data.on_bad_record=skip` (dead letters: shard, record index, id, reason) and
`<prefix>.summary.json` the run's counts. Lines and records come in no particular
order (workers write their shards in parallel): join on the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, List

import apache_beam as beam
import numpy as np

from videotag.beam.failures import counter, dead_letter
from videotag.beam.inference import Rejected, ServingModelHandler
from videotag.beam.records import DEAD, ReadRecords

PREDICTIONS, EMBEDDINGS = "predictions", "embeddings"
SUFFIX = {PREDICTIONS: ".jsonl", EMBEDDINGS: ".tfrecord"}
FAILED, SUMMARY = ".failed.jsonl", ".summary.json"


@dataclass
class InferenceJob:
    """One batch-predict or batch-embed run.

    Attributes:
        kind: `PREDICTIONS` or `EMBEDDINGS`.
        files: the record shards.
        saved_model: the export's version folder.
        output_prefix: where the staged shards go (`StagedOutput.prefix`).
        on_bad_record: "error" (stop at a bad record) or "skip" (dead-letter it).
        top_k: tags per video (predictions).
        threshold: tags below it left out (predictions).
        batch_size: records per model call (consecutive records of a shard).
        num_shards: output shards (0: the runner decides).
    """

    kind: str
    files: List[str]
    saved_model: str
    output_prefix: str
    on_bad_record: str = "error"
    top_k: int = 20
    threshold: float = 0.0
    batch_size: int = 256
    num_shards: int = 0


class ToOutput(beam.DoFn):
    """A `Served` -> its JSON line or embedding record; a `Rejected` -> a dead letter."""

    def __init__(self, job: InferenceJob):
        self.kind, self.top_k, self.threshold = job.kind, job.top_k, job.threshold

    def setup(self):
        self.videos = counter("videos")
        self.bad = counter("bad_records")

    def process(self, result) -> Iterator:
        if isinstance(result, Rejected):
            self.bad.inc()
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(
                result.record.shard, result.reason, record=result.record.index))
            return
        self.videos.inc()
        if self.kind == PREDICTIONS:
            from videotag.inference.predict import rows
            from videotag.inference.writers import json_line

            batch = {k: np.asarray([v]) for k, v in result.outputs.items()}
            (row,) = rows([batch], self.top_k)
            yield json_line(row, self.threshold)
        else:
            from videotag.retrieval.embeddings import embedding_example, l2_normalize

            video_id = result.outputs["video_id"].decode("utf-8", "replace")
            yield embedding_example(video_id, l2_normalize(result.outputs["embedding"][None])[0])


def build(job: InferenceJob, pipeline) -> None:
    """Adds the job's transforms to `pipeline`."""
    from apache_beam.io.textio import WriteToText
    from apache_beam.io.tfrecordio import WriteToTFRecord
    from apache_beam.ml.inference.base import RunInference

    skip = job.on_bad_record == "skip"
    read = pipeline | "Read" >> ReadRecords(job.files, skip, job.batch_size)
    handler = ServingModelHandler(job.saved_model, skip)
    out = (read.records
           | "Model" >> RunInference(handler)
           | "Output" >> beam.ParDo(ToOutput(job)).with_outputs(DEAD, main="main"))
    if job.kind == PREDICTIONS:
        out.main | "Write" >> WriteToText(job.output_prefix, file_name_suffix=SUFFIX[job.kind],
                                          num_shards=job.num_shards)
    else:
        out.main | "Write" >> WriteToTFRecord(job.output_prefix,
                                              file_name_suffix=SUFFIX[job.kind],
                                              num_shards=job.num_shards)
    dead = (read[DEAD], out[DEAD]) | "Failures" >> beam.Flatten()
    dead | "WriteFailures" >> WriteToText(job.output_prefix + FAILED, num_shards=1,
                                          shard_name_template="")


def previous_files(name: str, kind: str) -> List[str]:
    """Globs of a previous run's files of prefix `name` (relative to its folder)."""
    return [f"{name}-?????-of-?????{SUFFIX[kind]}", name + FAILED, name + SUMMARY]


def export_on_bad_record(saved_model: str) -> str:
    """The `data.on_bad_record` of an export's config (`assets.extra/videotag_config.yaml`)."""
    import tensorflow as tf

    from videotag.config import engine, from_dict
    from videotag.export.saved_model import CONFIG_FILE, EXTRA_DIR

    path = f"{saved_model.rstrip('/')}/{EXTRA_DIR}/{CONFIG_FILE}"
    if not tf.io.gfile.exists(path):
        return "error"

    class _File:
        def read_text(self, encoding="utf-8"):
            with tf.io.gfile.GFile(path, "r") as f:
                return f.read()

        def __str__(self):
            return path

    return from_dict(engine.read_yaml(_File())).data.on_bad_record


def run_job(job: InferenceJob, target: str, options, command: str):
    """Runs a predictions or embeddings job into `target` (an output prefix) and
    returns its `BatchSummary`; the previous run's files of the prefix are replaced."""
    from videotag.beam.options import workers
    from videotag.beam.run import BatchSummary, run_pipeline
    from videotag.beam.staging import StagedOutput

    staged = StagedOutput(target, "prefix")
    job.output_prefix = staged.prefix
    summary = BatchSummary(command, workers(options))
    return run_pipeline(lambda p: build(job, p), options, staged, summary,
                        dead_letters=staged.prefix + FAILED,
                        summary_file=staged.prefix + SUMMARY,
                        previous=previous_files(staged.name, job.kind))


def command_main(kind: str, argv, command: str) -> int:
    """The body of `videotag batch-predict` and `batch-embed` (flags in absl's FLAGS,
    Beam's options in `argv[1:]`). Returns the exit status."""
    import sys

    import tensorflow as tf
    from absl import flags

    from videotag.beam.options import pipeline_options
    from videotag.data import list_files
    from videotag.errors import ModelError, VideotagError

    FLAGS = flags.FLAGS
    options = pipeline_options(argv[1:], FLAGS.beam_log_level)
    if FLAGS.batch_size <= 0 or getattr(FLAGS, "top_k", 1) <= 0:
        raise VideotagError("--batch_size and --top_k must be positive")
    if not tf.io.gfile.exists(f"{FLAGS.saved_model.rstrip('/')}/saved_model.pb"):
        raise ModelError(f"{FLAGS.saved_model}: no saved_model.pb here (give a version folder "
                         "such as exports/nextvlad/1)")
    job = InferenceJob(kind, list_files(FLAGS.input_data_pattern), FLAGS.saved_model, "",
                       FLAGS.on_bad_record or export_on_bad_record(FLAGS.saved_model),
                       getattr(FLAGS, "top_k", 20), getattr(FLAGS, "threshold", 0.0),
                       FLAGS.batch_size, FLAGS.num_shards)
    summary = run_job(job, FLAGS.output_prefix, options, command)
    verb = "predicted" if kind == PREDICTIONS else "embedded"
    videos = summary.counts.get("videos", 0)
    print(f"{verb} {videos} videos of {len(job.files)} shard(s) in {summary.seconds:.1f} s "
          f"({summary.rate('videos'):.1f} videos/s; {summary.runner}) to "
          f"{FLAGS.output_prefix}-*{SUFFIX[kind]}", file=sys.stderr)
    if summary.failed:
        print(f"skipped {summary.counts.get('bad_records', 0)} bad record(s) and "
              f"{summary.counts.get('corrupt_shards', 0)} corrupt shard(s) read up to the "
              f"damage (dead letters in {FLAGS.output_prefix}{FAILED})", file=sys.stderr)
    return 0
