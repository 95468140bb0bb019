"""Video embeddings for similar-video recall: extraction and files.

`write_embeddings` streams (ids, vectors) batches to disk, L2-normalised, as

- `<prefix>.npy`: float32 [N, D], row i the embedding of video i, plus
  `<prefix>.ids.txt`: the video ids, one per line, in the same order;
- `<prefix>.tfrecord`: one `tf.train.Example` per video with `id` (bytes) and
  `embedding` (float list).

The .npy header is written with room for any N and filled in at the end, so memory
stays flat however many videos there are; `np.load(path, mmap_mode="r")` reads it
without loading it. The files may go to any file system of TensorFlow
(`videotag.files`: each appears only when all are complete; the .npy, whose header
is rewritten at the end, is staged in a local file when the target is not local).
"""

from __future__ import annotations

import contextlib
import io
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from videotag import files
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
        path: a local file to write (its header is rewritten by `close`).
        dim: the row length.
    """

    def __init__(self, path: str, dim: int):
        self.path, self.dim, self.rows = path, dim, 0
        self._file = open(path, "wb")
        self._file.write(_npy_header(0, dim))

    def write(self, block: np.ndarray) -> None:
        if block.ndim != 2 or block.shape[1] != self.dim:
            raise ValueError(f"rows of {self.dim} values expected, got shape {block.shape}")
        self._file.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
        self.rows += block.shape[0]

    def close(self) -> None:
        """Writes the header with the final row count and closes the file."""
        if self._file.closed:
            return
        self._file.seek(0)
        self._file.write(_npy_header(self.rows, self.dim))
        self._file.close()


def embedding_paths(prefix: str, formats: Sequence[str] = ("npy",)) -> List[str]:
    """The files `write_embeddings` writes for `prefix` and `formats`."""
    paths = []
    if "npy" in formats:
        paths += [f"{prefix}.npy", f"{prefix}.ids.txt"]
    if "tfrecord" in formats:
        paths.append(f"{prefix}.tfrecord")
    return paths


def write_embeddings(batches: Iterable[Tuple[Sequence[str], np.ndarray]], prefix: str,
                     formats: Sequence[str] = ("npy",), verbose: bool = True,
                     progress_seconds: float = 10.0) -> Tuple[int, int]:
    """Writes L2-normalised embeddings; returns (videos, dimension).

    Every file is written under a temporary name and swapped in when all are complete
    (`videotag.files`); on any error none is, and earlier files stay as they were.

    Raises:
        DataError: no record at all, or an id holding a line break (ids.txt is
            one id per line).
        OutputError: a file cannot be written (no space left, ...), naming it.
    """
    unknown = [f for f in formats if f not in EMBEDDING_FORMATS]
    if unknown or not formats:
        raise ValueError(f"embedding formats: {', '.join(EMBEDDING_FORMATS)} (got {formats})")
    npy_path, ids_path, records_path = (f"{prefix}.npy", f"{prefix}.ids.txt",
                                        f"{prefix}.tfrecord")
    progress = Progress("embedded", every=progress_seconds if verbose else 0)
    npy, ids_file, records, dim = None, None, None, 0
    with contextlib.ExitStack() as outputs:
        # ExitStack swaps the files in (in reverse order) when the block succeeds
        if "npy" in formats:
            npy_tmp = outputs.enter_context(files.local_output(npy_path, "embeddings file"))
            ids_file = outputs.enter_context(files.open_output(ids_path, what="embeddings file"))
        if "tfrecord" in formats:
            records_tmp = outputs.enter_context(files.output_path(records_path,
                                                                  what="embeddings file"))
        for ids, vectors in batches:
            vectors = l2_normalize(vectors)
            dim = vectors.shape[1]
            if "npy" in formats:
                for vid in ids:
                    if "\n" in vid or "\r" in vid:
                        raise DataError(f"video id {vid!r} holds a line break: it cannot be "
                                        "written to the ids file (use --format=tfrecord)")
                with files.output_errors(npy_path, "embeddings file"):
                    if npy is None:
                        npy = outputs.enter_context(files.closing(
                            NpyRowWriter(npy_tmp, dim), npy_path, "embeddings file"))
                    npy.write(vectors)
                ids_file.write("".join(f"{vid}\n" for vid in ids))
            if "tfrecord" in formats:
                with files.output_errors(records_path, "embeddings file"):
                    if records is None:
                        records = outputs.enter_context(files.closing(
                            tf.io.TFRecordWriter(records_tmp), records_path, "embeddings file"))
                    for vid, vector in zip(ids, vectors):
                        records.write(embedding_example(vid, vector))
            progress.add(len(ids))
        progress.close()
        if progress.count == 0:
            raise DataError("no records to embed")
    return progress.count, dim


def embedding_example(video_id: str, vector: np.ndarray) -> bytes:
    """A serialized `tf.train.Example` of one video: `id` (bytes), `embedding` (floats)."""
    return tf.train.Example(features=tf.train.Features(feature={
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[video_id.encode("utf-8")])),
        "embedding": tf.train.Feature(float_list=tf.train.FloatList(value=vector.tolist())),
    })).SerializeToString()


def load_embeddings(prefix: str) -> Tuple[List[str], np.ndarray]:
    """(ids, vectors) of `<prefix>.npy` and `<prefix>.ids.txt`; for a local file the
    vectors are a read-only memory map (nothing is loaded until used), on another file
    system they are read whole.

    Raises:
        DataError: a file is missing, not a 2-D float .npy, or the counts differ.
    """
    npy, ids_path = f"{prefix}.npy", f"{prefix}.ids.txt"
    for path in (npy, ids_path):
        if not tf.io.gfile.exists(path):
            raise DataError(f"embeddings file not found: {path} (write it with videotag embed)")
    try:
        if files.is_local(npy):
            vectors = np.load(npy.split("://", 1)[-1], mmap_mode="r")
        else:
            with tf.io.gfile.GFile(npy, "rb") as f:
                vectors = np.load(io.BytesIO(f.read()))
    except ValueError as exc:
        raise DataError(f"{npy}: not a readable .npy file ({exc})") from None
    if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
        raise DataError(f"{npy}: expected a 2-D float array, got {vectors.dtype} {vectors.shape}")
    with tf.io.gfile.GFile(ids_path, "rb") as f:
        ids = f.read().decode("utf-8").splitlines()
    if len(ids) != vectors.shape[0]:
        raise DataError(f"{ids_path} has {len(ids)} ids but {npy} has {vectors.shape[0]} rows")
    return ids, vectors
