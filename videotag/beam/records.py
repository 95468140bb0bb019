"""Reading YT8M record shards in a pipeline, each record with its shard and index.

A shard is the unit of work: the shards are spread over the workers (a reshuffle
after the list of files), and one worker reads a shard from start to end with
`tf.data.TFRecordDataset`, so each record keeps its index in its shard (for the
messages about bad records) and any `tf.io.gfile` file system can be read. A
YT8M-size input has thousands of shards, far more than workers.

Records leave in batches of `batch_size` consecutive records of a shard, the
batches `videotag predict` and `videotag embed` make: a video is scored in the same
batch (padded to the same length) as by the single-machine tools, so the outputs
are the same to the bit, and records are never shuffled between workers.

A corrupt or truncated shard stops the run (`data.on_bad_record=error`, the
message names the shard and the record where the damage starts), or with `skip`
is read up to the damage and becomes a dead letter, as in the single-machine tools.
"""

from __future__ import annotations

from typing import Iterator, List, NamedTuple

import apache_beam as beam

from videotag.beam.failures import WorkerError, counter, dead_letter
from videotag.errors import DataError

DEAD = "dead"


class Record(NamedTuple):
    """A serialized record and where it comes from."""

    shard: str
    index: int
    data: bytes


class ReadShard(beam.DoFn):
    """shard path -> lists of up to `batch_size` consecutive `Record`s; a damaged shard
    per `skip_corrupt`."""

    def __init__(self, skip_corrupt: bool, batch_size: int):
        self.skip_corrupt, self.batch_size = skip_corrupt, batch_size

    def setup(self):
        self.records = counter("records_read")
        self.corrupt = counter("corrupt_shards")

    def process(self, shard: str) -> Iterator:
        import tensorflow as tf

        index, batch = 0, []
        try:
            for data in tf.data.TFRecordDataset(shard).as_numpy_iterator():
                batch.append(Record(shard, index, data))
                index += 1
                if len(batch) == self.batch_size:
                    yield batch
                    batch = []
            if batch:
                yield batch
        except (tf.errors.DataLossError, tf.errors.OutOfRangeError):
            if not self.skip_corrupt:
                raise WorkerError(DataError(
                    f"{shard}: record {index}: the shard is corrupt or truncated (CRC check "
                    "failed); replace or remove this file (or set data.on_bad_record=skip to "
                    "read it up to the damage)")) from None
            self.corrupt.inc()
            if batch:
                yield batch
            yield beam.pvalue.TaggedOutput(DEAD, dead_letter(
                shard, f"corrupt or truncated at record {index}; the rest of this shard is "
                "skipped", record=index))
        except tf.errors.NotFoundError:
            raise WorkerError(DataError(f"data file not found: {shard}")) from None
        finally:
            self.records.inc(index)


class ReadRecords(beam.PTransform):
    """Batches of the `Record`s of `files` (main output) and damaged shards' dead
    letters (`DEAD`).

    Args:
        files: the shards (e.g. `videotag.data.list_files(pattern)`).
        skip_corrupt: read a damaged shard up to the damage (else stop the run).
        batch_size: records per batch (the last of a shard may have fewer).
    """

    def __init__(self, files: List[str], skip_corrupt: bool, batch_size: int):
        super().__init__()
        self.files, self.skip_corrupt, self.batch_size = list(files), skip_corrupt, batch_size

    def expand(self, pbegin):
        return (pbegin
                | "Shards" >> beam.Create(self.files)
                | "Spread" >> beam.Reshuffle()
                | "Read" >> beam.ParDo(ReadShard(self.skip_corrupt, self.batch_size)).with_outputs(
                    DEAD, main="records"))
