"""Video embeddings for similar-video recall: extraction and files.

`write_embeddings` streams (ids, vectors) batches to disk, L2-normalised, as

- `<prefix>.npy`: float32 [N, D], row i the embedding of video i, plus
  `<prefix>.ids.txt`: the video ids, one per line, in the same order;
- `<prefix>.tfrecord`: one `tf.train.Example` per video with `id` (bytes) and
  `embedding` (float list).

The .npy header is written with room for any N and filled in at the end, so memory
stays flat however many videos there are; `np.load(path, mmap_mode="r")` reads it
without loading it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from videotag.errors import DataError
from videotag.progress import Progress

EMBEDDING_FORMATS = ("npy", "tfrecord")
_NPY_MAGIC = b"\x93NUMPY\x01\x00"
_NPY_HEADER_BYTES = 128  # magic, version, length and the padded dict: a multiple of 64


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (float32); all-zero rows stay zero."""
    x = np.asarray(x, np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def embedding_batches(pattern: str, model_dir: Optional[str] = None,
                      saved_model: Optional[str] = None, batch_size: int = 256,
                      on_bad_record: Optional[str] = None
                      ) -> Iterator[Tuple[List[str], np.ndarray]]:
    """(video ids, embeddings float32 [B, D]) of every record matching `pattern`, in
    file order, from a model directory or an exported SavedModel (give one)."""
    from videotag.inference.predict import model_dir_batches, saved_model_batches

    if bool(model_dir) == bool(saved_model):
        raise ValueError("give exactly one of model_dir and saved_model")
    if model_dir:
        batches = model_dir_batches(model_dir, pattern, 1, batch_size, on_bad_record)
    else:
        batches = saved_model_batches(saved_model, pattern, batch_size)
    for out in batches:
        ids = [v.decode("utf-8", "replace") for v in out["video_id"]]
        yield ids, np.asarray(out["embedding"], np.float32)


def _npy_header(rows: int, dim: int) -> bytes:
    text = f"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {dim}), }}"
    pad = _NPY_HEADER_BYTES - len(_NPY_MAGIC) - 2 - len(text) - 1
    return _NPY_MAGIC + (len(text) + pad + 1).to_bytes(2, "little") + text.encode() + b" " * pad + b"\n"


class NpyRowWriter:
    """Writes a float32 [N, dim] .npy file block by block; N is known only at the end.

    Args:
        path: the file to write (created under a temporary name, renamed by `close`).
        dim: the row length.
    """

    def __init__(self, path: os.PathLike, dim: int):
        self.path, self.dim, self.rows = Path(path), dim, 0
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self._file = open(self.tmp, "wb")
        self._file.write(_npy_header(0, dim))

    def write(self, block: np.ndarray) -> None:
        if block.ndim != 2 or block.shape[1] != self.dim:
            raise ValueError(f"rows of {self.dim} values expected, got shape {block.shape}")
        self._file.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        self.rows += block.shape[0]

    def close(self) -> None:
        self._file.seek(0)
        self._file.write(_npy_header(self.rows, self.dim))
        self._file.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self._file.close()
        if self.tmp.exists():
            self.tmp.unlink()


def write_embeddings(batches: Iterable[Tuple[Sequence[str], np.ndarray]], prefix: str,
                     formats: Sequence[str] = ("npy",), verbose: bool = True,
                     progress_seconds: float = 10.0) -> Tuple[int, int]:
    """Writes L2-normalised embeddings; returns (videos, dimension).

    Every file is written under a temporary name and renamed when all are complete.

    Raises:
        DataError: no record at all, or an id holding a line break (ids.txt is
            one id per line).
    """
    unknown = [f for f in formats if f not in EMBEDDING_FORMATS]
    if unknown or not formats:
        raise ValueError(f"embedding formats: {', '.join(EMBEDDING_FORMATS)} (got {formats})")
    base = Path(prefix)
    base.parent.mkdir(parents=True, exist_ok=True)
    targets = {"ids": base.with_name(base.name + ".ids.txt"),
               "npy": base.with_name(base.name + ".npy"),
               "tfrecord": base.with_name(base.name + ".tfrecord")}
    tmp = {k: p.with_name(f".{p.name}.tmp") for k, p in targets.items()}
    progress = Progress("embedded", progress_seconds if verbose else 0)
    npy, ids_file, records, dim = None, None, None, 0
    try:
        for ids, vectors in batches:
            vectors = l2_normalize(vectors)
            if npy is None and "npy" in formats:
                dim = vectors.shape[1]
                npy = NpyRowWriter(targets["npy"], dim)
                ids_file = open(tmp["ids"], "w", encoding="utf-8")
            if records is None and "tfrecord" in formats:
                dim = vectors.shape[1]
                records = tf.io.TFRecordWriter(str(tmp["tfrecord"]))
            if npy is not None:
                for vid in ids:
                    if "\n" in vid or "\r" in vid:
                        raise DataError(f"video id {vid!r} holds a line break: it cannot be "
                                        "written to the ids file (use --format=tfrecord)")
                npy.write(vectors)
                ids_file.write("".join(f"{vid}\n" for vid in ids))
            if records is not None:
                for vid, vector in zip(ids, vectors):
                    records.write(embedding_example(vid, vector))
            progress.add(len(ids))
        progress.close()
        if progress.count == 0:
            raise DataError("no records to embed")
    except BaseException:
        if npy is not None:
            npy.abort()
            ids_file.close()
        if records is not None:
            records.close()
        for path in tmp.values():
            if path.exists():
                path.unlink()
        raise
    if npy is not None:
        ids_file.close()
        npy.close()
        os.replace(tmp["ids"], targets["ids"])
    if records is not None:
        records.close()
        os.replace(tmp["tfrecord"], targets["tfrecord"])
    return progress.count, dim


def embedding_example(video_id: str, vector: np.ndarray) -> bytes:
    """A serialized `tf.train.Example` of one video: `id` (bytes), `embedding` (floats)."""
    return tf.train.Example(features=tf.train.Features(feature={
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[video_id.encode("utf-8")])),
        "embedding": tf.train.Feature(float_list=tf.train.FloatList(value=vector.tolist())),
    })).SerializeToString()


def load_embeddings(prefix: str) -> Tuple[List[str], np.ndarray]:
    """(ids, vectors) of `<prefix>.npy` and `<prefix>.ids.txt`; the vectors are a
    read-only memory map (nothing is loaded until used).

    Raises:
        DataError: a file is missing, not a 2-D float .npy, or the counts differ.
    """
    base = Path(prefix)
    npy, ids_path = base.with_name(base.name + ".npy"), base.with_name(base.name + ".ids.txt")
    for path in (npy, ids_path):
        if not path.is_file():
            raise DataError(f"embeddings file not found: {path} (write it with videotag embed)")
    try:
        vectors = np.load(npy, mmap_mode="r")
    except ValueError as exc:
        raise DataError(f"{npy}: not a readable .npy file ({exc})") from None
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
        raise DataError(f"{npy}: expected a 2-D float array, got {vectors.dtype} {vectors.shape}")
    ids = ids_path.read_text(encoding="utf-8").splitlines()
    if len(ids) != vectors.shape[0]:
        raise DataError(f"{ids_path} has {len(ids)} ids but {npy} has {vectors.shape[0]} rows")
    return ids, vectors
