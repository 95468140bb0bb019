"""An exported SavedModel as a Beam `RunInference` model handler.

`ServingModelHandler` loads the export once per worker process (RunInference
shares it between the worker's threads) and runs its `serving_default` signature
on the batches of `Record`s that `ReadRecords` makes (each element is one batch:
RunInference is told not to batch them further), so records are parsed and checked
by the model's own graph: the one record parser of `videotag.data`, with the same
messages as `videotag predict --saved_model`.

Why not Beam's TensorFlow handler (`apache_beam.ml.inference.tensorflow_inference`):
it loads models with `tf.keras.models.load_model` (through tensorflow_hub, an extra
dependency), which under Keras 3 reads `.keras` files only, not a SavedModel; and it
stacks one tensor per example into one positional input, while the signature takes
a batch of serialized records by name and returns a dict. The base `ModelHandler`
keeps what RunInference gives: batching, one model per process, its metrics.

A batch that the graph rejects is split in halves until the bad records are alone;
each bad record stops the run (`on_bad_record=error`) or becomes a `Rejected`
result (`skip`), and the others are served.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence

from apache_beam.ml.inference.base import ModelHandler

from videotag.beam.failures import NAMESPACE, WorkerError
from videotag.beam.records import Record


class Served(NamedTuple):
    """A record's outputs: the signature's outputs for this one video (NumPy values)."""

    record: Record
    outputs: Dict[str, Any]


class Rejected(NamedTuple):
    """A record the serving graph rejected, and its message ("<shard>: record <i> ...")."""

    record: Record
    reason: str


class _Loaded:
    """The loaded SavedModel and its signature (the object keeps the variables alive)."""

    def __init__(self, path: str):
        from videotag.inference.predict import load_saved_model

        self.saved_model = load_saved_model(path)
        self.serve = self.saved_model.signatures["serving_default"]


class ServingModelHandler(ModelHandler):
    """RunInference handler of an exported videotag SavedModel on `Record`s.

    Args:
        saved_model: the export's version folder (any `tf.io.gfile` path).
        skip_bad: reject bad records as `Rejected` results (else stop the run).
    """

    def __init__(self, saved_model: str, skip_bad: bool = False):
        super().__init__(min_batch_size=1, max_batch_size=1)  # elements are batches
        self.saved_model, self.skip_bad = saved_model, skip_bad

    def load_model(self) -> _Loaded:
        return _Loaded(self.saved_model)

    def run_inference(self, batch: Sequence[List[Record]], model: _Loaded,
                      inference_args: Optional[Dict[str, Any]] = None) -> List:
        """A `Served` or `Rejected` per record of the record batches in `batch`."""
        return [out for records in batch for out in self._serve(model, records)]

    def _serve(self, model: _Loaded, records: Sequence[Record]) -> Iterator:
        import tensorflow as tf

        from videotag.data.tf_errors import bad_record_error
        from videotag.inference.predict import describe_rejection

        try:
            out = model.serve(example_bytes=tf.constant([r.data for r in records]))
        except tf.errors.InvalidArgumentError as exc:
            if len(records) > 1:
                half = len(records) // 2
                yield from self._serve(model, records[:half])
                yield from self._serve(model, records[half:])
                return
            record = records[0]
            reason = f"{record.shard}: {describe_rejection(exc.message, record.index)}"
            if not self.skip_bad:
                raise WorkerError(bad_record_error(reason)) from None
            yield Rejected(record, reason)
            return
        values = {k: v.numpy() for k, v in out.items()}
        for i, record in enumerate(records):
            yield Served(record, {k: v[i] for k, v in values.items()})

    def get_num_bytes(self, batch: Sequence[List[Record]]) -> int:
        return sum(len(r.data) for records in batch for r in records)

    def get_metrics_namespace(self) -> str:
        return NAMESPACE
