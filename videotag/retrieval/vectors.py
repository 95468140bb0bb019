"""The embeddings a search reads, from `videotag embed` or `videotag batch-embed`.

A prefix names either
- `<prefix>.npy` + `<prefix>.ids.txt` (`videotag embed`), read as a memory map; or
- `<prefix>-SSSSS-of-NNNNN.tfrecord` (`videotag batch-embed`, or `videotag embed
  --format=tfrecord`'s single `<prefix>.tfrecord`): Examples with `id` and
  `embedding`, read into memory in shard order.

`Embeddings.stamp` names the files with their sizes and modification times, so an
index built from them (`videotag.retrieval.index`) knows when they have changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np

from videotag.errors import DataError


@dataclass
class Embeddings:
    """Video ids and their vectors.

    Attributes:
        ids: N video ids; row i of `vectors` is video `ids[i]`.
        vectors: float [N, D], an array or a read-only memory map.
        stamp: [path, bytes, modification time in ns] of every file read.
    """

    ids: List[str]
    vectors: np.ndarray
    stamp: List[list]


def _stamp(paths: List[str]) -> List[list]:
    import tensorflow as tf

    out = []
    for path in paths:
        stat = tf.io.gfile.stat(path)
        out.append([path, int(stat.length), int(stat.mtime_nsec)])
    return out


def shard_files(prefix: str) -> List[str]:
    """The embedding TFRecord files of `prefix` (sharded, or a single file)."""
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(f"{prefix}-?????-of-?????.tfrecord"))
    if not files and tf.io.gfile.exists(f"{prefix}.tfrecord"):
        files = [f"{prefix}.tfrecord"]
    return files


def read_shards(files: List[str]):
    """(ids, float32 [N, D]) of embedding Examples (`id`, `embedding`), in file order.

    Raises:
        DataError: a record without them, embeddings of different lengths, no record.
    """
    import tensorflow as tf

    ids: List[str] = []
    rows: List[np.ndarray] = []
    spec = {"id": tf.io.FixedLenFeature([], tf.string),
            "embedding": tf.io.VarLenFeature(tf.float32)}
    for path in files:
        try:
            for batch in tf.data.TFRecordDataset(path).batch(4096):
                parsed = tf.io.parse_example(batch, spec)
                names = parsed["id"].numpy()
                lengths = np.bincount(parsed["embedding"].indices.numpy()[:, 0],
                                      minlength=len(names))
                dim = rows[0].shape[1] if rows else int(lengths.max())
                if (lengths != dim).any():
                    raise DataError(f"{path}: embeddings of different lengths "
                                    f"({dim} and {int(lengths[lengths != dim][0])})")
                ids.extend(v.decode("utf-8", "replace") for v in names)
                rows.append(tf.sparse.to_dense(parsed["embedding"]).numpy())
        except tf.errors.OpError as exc:
            raise DataError(f"{path}: not a file of embedding records with 'id' and "
                            f"'embedding' ({exc.message.splitlines()[0]})") from None
    if not rows:
        raise DataError(f"no embeddings in {', '.join(files)}")
    return ids, np.concatenate(rows)


def load_vectors(prefix: str) -> Embeddings:
    """The embeddings of `prefix`: its .npy (memory map) or its TFRecord shards.

    Raises:
        DataError: neither exists, or they are unreadable (naming the file).
    """
    import tensorflow as tf

    from videotag.retrieval.embeddings import load_embeddings

    if tf.io.gfile.exists(f"{prefix}.npy"):
        ids, vectors = load_embeddings(prefix)
        return Embeddings(ids, vectors, _stamp([f"{prefix}.npy", f"{prefix}.ids.txt"]))
    files = shard_files(prefix)
    if not files:
        raise DataError(f"no embeddings at {prefix}: neither {prefix}.npy (videotag embed) nor "
                        f"{prefix}-*-of-*.tfrecord (videotag batch-embed)")
    ids, vectors = read_shards(files)
    return Embeddings(ids, vectors, _stamp(files))
