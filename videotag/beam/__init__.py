"""Apache Beam pipelines: feature extraction, prediction and embeddings at scale.

The same single-machine code (`videotag.extraction`, the SavedModel's serving graph,
`videotag.inference` and `videotag.retrieval` writers) runs inside Beam transforms,
so a pipeline runs on the DirectRunner here and unchanged on Dataflow, Flink or
Spark. Beam is an optional dependency: `pip install "videotag[beam]"`.

- `extract`: videos -> YT8M frame-level record shards, dead letters for failures.
- `predict`: records -> JSON Lines predictions, and records -> embedding shards.
- `records`: reading record shards with each record's shard and index.
- `inference`: the SavedModel as a Beam `RunInference` model handler.
- `staging`: outputs written aside and swapped in when the pipeline has succeeded.
- `run`: running a pipeline: options, metrics, errors, the summary.
"""

from videotag.beam.options import quiet_beam
from videotag.errors import ConfigError

quiet_beam()  # before Beam is imported: its import warns about clients it does not need


def require_beam() -> None:
    """Fails with an install hint when Apache Beam is missing.

    Raises:
        ConfigError: apache_beam cannot be imported.
    """
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        raise ConfigError('the batch pipelines need Apache Beam: pip install "videotag[beam]" '
                          '(or ".[beam]" in a clone)') from None
