"""The batch commands' command lines: their own flags beside Beam's pipeline options.

`videotag batch-predict --saved_model=... --runner=DataflowRunner --project=...`:
the command's flags are parsed by absl (`parse_flags`, given to `absl.app.run`),
everything else is handed to Beam's `PipelineOptions` (`pipeline_options`), which
knows every runner's options (Direct, Dataflow, Flink, Spark, portable). A flag
that is neither stops the run with its name, instead of Beam's warning that
discards it.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import List, Sequence

from absl import flags

from videotag.errors import ConfigError

FLAGS = flags.FLAGS


def define_pipeline_flags() -> None:
    """The flags every batch command has (in absl's global FLAGS)."""
    flags.DEFINE_integer("num_shards", 0, "Output shards (0: the runner decides).")
    flags.DEFINE_enum("beam_log_level", "CRITICAL",
                      ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
                      "Level of Beam's own log messages, the workers' included (INFO shows "
                      "e.g. the Dataflow job's link; errors that stop the run are printed "
                      "whatever the level).")


def define_inference_flags() -> None:
    """The flags of batch-predict and batch-embed (the pipeline flags included)."""
    flags.DEFINE_string("saved_model", None, "Exported SavedModel version folder (any "
                        "tf.io.gfile path, e.g. gs://bucket/exports/nextvlad/1).", required=True)
    flags.DEFINE_string("input_data_pattern", None, "Glob(s) of records (comma-separated).",
                        required=True)
    flags.DEFINE_string("output_prefix", None, "Output prefix: <prefix>-SSSSS-of-NNNNN shards, "
                        "<prefix>.failed.jsonl, <prefix>.summary.json.", required=True)
    flags.DEFINE_integer("batch_size", 256, "Videos per model call: consecutive records of a "
                         "shard, the batches of videotag predict and embed.")
    flags.DEFINE_enum("on_bad_record", None, ["error", "skip"], "Bad records: stop (error) or "
                      "drop them to the dead letters (skip); default the export's "
                      "data.on_bad_record.")
    define_pipeline_flags()


def parse_flags(argv: List[str]) -> List[str]:
    """absl's flags parser for the batch commands: parses the command's flags and
    returns the program name and every other argument (Beam's options)."""
    try:
        return FLAGS(argv, known_only=True)
    except flags.Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


class _QuietBeam(logging.Filter):
    """Drops Beam's warnings logged on the root logger (its optional clients)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apache_beam" not in record.pathname or record.levelno >= logging.ERROR


def quiet_beam(level: str = "") -> None:
    """Beam's warnings about optional clients on the root logger are not shown
    (`videotag.beam` calls this when imported), nor, with `level`, Beam's log messages
    below it (in this process: the launcher)."""
    if level:
        logging.getLogger("apache_beam").setLevel(level)
    root = logging.getLogger()
    if not any(isinstance(f, _QuietBeam) for f in root.filters):
        root.addFilter(_QuietBeam())


def pipeline_options(args: Sequence[str], level: str = "CRITICAL"):
    """Beam's `PipelineOptions` of `args` (the arguments `parse_flags` left).

    Raises:
        ConfigError: an argument is neither a flag of the command nor a Beam option.
    """
    quiet_beam(level)
    from apache_beam.options.pipeline_options import PipelineOptions
    # the Flink and Spark runners define their options in their own modules
    from apache_beam.runners.portability import flink_runner, spark_runner  # noqa: F401

    args = list(args)
    if not any(a.startswith("--default_sdk_harness_log_level") for a in args):
        args.append(f"--default_sdk_harness_log_level={level}")  # the workers' own logs
    # TensorFlow's C++ messages in worker processes started from here (not this one's)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    loose = [a for i, a in enumerate(args)
             if not a.startswith("-") and (i == 0 or not args[i - 1].startswith("--")
                                           or "=" in args[i - 1])]
    if loose:
        raise ConfigError(f"unexpected argument '{loose[0]}' (flags are --name=value)")
    options = PipelineOptions(args)
    known = set(options.get_all_options())
    unknown = [name for name in options.get_all_options(retain_unknown_options=True)
               if name not in known]
    if unknown:
        raise ConfigError(f"unknown flag --{unknown[0]}: neither a flag of this command nor a "
                          "Beam pipeline option (see --help)")
    return options


def workers(options) -> str:
    """How the pipeline runs, for the summary: "DirectRunner, 2 workers (multi_processing)"."""
    values = options.get_all_options()
    runner = values.get("runner") or "DirectRunner"
    if "Direct" in str(runner):
        count = values.get("direct_num_workers") or 1
        mode = values.get("direct_running_mode") or "in_memory"
        return f"{runner}, {count} worker{'s' if count != 1 else ''} ({mode})"
    return str(runner)
