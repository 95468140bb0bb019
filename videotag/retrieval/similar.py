"""Exact cosine similar-video search over an embeddings file, in blocks.

The scores of a block of queries against a block of videos are one matrix product
(float32, BLAS); a running top-k per query is merged block by block. Memory is a few
blocks (block_size^2 floats each), whatever the number of videos: the embeddings are
a memory map that the OS pages in and out (1,000,000 x 1024 floats is a 4 GB file).

Ranking is deterministic: by cosine, descending, then by row index for equal scores.
The query video itself is never among its results.
"""

from __future__ import annotations

import json
from typing import IO, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from videotag.errors import DataError
from videotag.progress import Progress
from videotag.retrieval.embeddings import l2_normalize

SIMILAR_FORMATS = ("tsv", "jsonl")
Result = Tuple[str, List[Tuple[str, float]]]


def _block_scores(queries: np.ndarray, vectors, start: int, stop: int) -> np.ndarray:
    """Cosines of unit `queries` [q, D] with rows start..stop of `vectors` [q, m]: one
    matrix product on the memory map's rows, divided by their norms (the squared
    norms also reveal NaN and inf in one pass)."""
    block = vectors[start:stop]
    if block.dtype != np.float32:
        block = block.astype(np.float32)
    squares = np.einsum("ij,ij->i", block, block)
    finite = np.isfinite(squares)
    if not finite.all():
        raise DataError(f"embedding row {start + int(np.argmin(finite))} holds NaN or inf values")
    if len(queries) == 1:  # matrix-vector: BLAS would pack the whole block for a 1-row product
        scores = (block @ queries[0])[None, :]
    else:
        scores = queries @ block.T
    norms = np.sqrt(squares)
    scores /= np.where(norms > 0, norms, 1.0)  # an all-zero row scores 0 with everything
    return scores


def _block_top_k(scores: np.ndarray, k: int, offset: int) -> Tuple[np.ndarray, np.ndarray]:
    """The k best (score, index) of each row of `scores` [q, m] (column j is video
    offset + j), equal scores taken by lowest index: an exact, vectorised top-k."""
    q, m = scores.shape
    columns = np.arange(m, dtype=np.int64)
    if m <= k:
        return scores, np.broadcast_to(columns + offset, (q, m))
    kth = np.partition(scores, m - k, axis=1)[:, m - k : m - k + 1]  # the k-th largest
    above = scores > kth
    needed = k - above.sum(axis=1, keepdims=True)
    tied = scores == kth
    take = above | (tied & (np.cumsum(tied, axis=1, dtype=np.int32) <= needed))
    picked = np.nonzero(take)[1].reshape(q, k)  # exactly k per row, by column
    return np.take_along_axis(scores, picked, axis=1), picked + offset


def _merge(scores_a, index_a, scores_b, index_b, k):
    scores = np.concatenate([scores_a, scores_b], axis=1)
    index = np.concatenate([index_a, index_b], axis=1)
    order = np.lexsort((index, -scores), axis=1)[:, :k]  # score descending, then index
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(index, order, axis=1)


def top_k_similar(queries: np.ndarray, vectors, k: int, block_size: int = 4096,
                  exclude: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The k rows of `vectors` most cosine-similar to each query.

    Args:
        queries: float [q, D] (normalised here).
        vectors: float [N, D], an array or a memory map (read block by block).
        k: neighbours per query; at most N, or N - 1 with `exclude`.
        block_size: the scores of a block_size x block_size block are held at once
            (rows of `vectors` per product: block_size^2 / number of queries, at
            least block_size).
        exclude: int [q], the row of each query in `vectors` (its own video), left
            out of its results.

    Returns:
        (indices int64 [q, k'], scores float32 [q, k']), best first.
    """
    queries = l2_normalize(queries)
    n = vectors.shape[0]
    k = max(0, min(k, n - (1 if exclude is not None else 0)))
    best_scores = np.full((len(queries), k), -np.inf, np.float32)
    best_index = np.full((len(queries), k), -1, np.int64)
    if k == 0:
        return best_index, best_scores
    # scores take len(queries) x step floats: few queries can take many rows at once
    # (fewer, larger products) within the same block_size^2 bound; rows that must be
    # converted to float32 are copied, so they come block_size at a time
    step = block_size
    if vectors.dtype == np.float32:
        step = max(block_size, block_size * block_size // max(len(queries), 1))
    for start in range(0, n, step):
        stop = min(start + step, n)
        scores = _block_scores(queries, vectors, start, stop)
        if exclude is not None:
            rows = np.nonzero((exclude >= start) & (exclude < stop))[0]
            scores[rows, exclude[rows] - start] = -np.inf
        block_scores, block_index = _block_top_k(scores, k, start)
        best_scores, best_index = _merge(best_scores, best_index, block_scores, block_index, k)
    return best_index, best_scores


def query_rows(ids: Sequence[str], query_ids: Optional[Sequence[str]]) -> np.ndarray:
    """The rows (int64) of `query_ids` in `ids` (the first of a repeated id), or every
    row when `query_ids` is None.

    Raises:
        DataError: a query id is not in `ids`.
    """
    if query_ids is None:
        return np.arange(len(ids), dtype=np.int64)
    position: Dict[str, int] = {}
    for i, vid in enumerate(ids):
        position.setdefault(vid, i)
    missing = [q for q in query_ids if q not in position]
    if missing:
        raise DataError(f"video id(s) not in the embeddings: {', '.join(missing[:5])}"
                        + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""))
    return np.array([position[q] for q in query_ids], np.int64)


def similar_videos(ids: Sequence[str], vectors, query_ids: Optional[Sequence[str]] = None,
                   k: int = 10, block_size: int = 4096, verbose: bool = False,
                   progress_seconds: float = 10.0) -> Iterator[Result]:
    """(query id, [(similar id, cosine), ...]) for each query id, or for every video
    when `query_ids` is None (queries in blocks of `block_size`).

    Raises:
        DataError: a query id is not in `ids`.
    """
    every = query_rows(ids, query_ids)
    blocks = (every[i:i + block_size] for i in range(0, len(every), block_size))
    progress = Progress("searched", every=progress_seconds if verbose else 0)
    for rows in blocks:
        queries = np.asarray(vectors[rows[0]:rows[-1] + 1] if _contiguous(rows) else vectors[rows])
        index, scores = top_k_similar(queries, vectors, k, block_size, exclude=rows)
        for row, neighbours, values in zip(rows, index, scores):
            yield ids[row], [(ids[j], float(s)) for j, s in zip(neighbours, values)]
        progress.add(len(rows))
    progress.close()


def _contiguous(rows: np.ndarray) -> bool:
    return bool(len(rows) and rows[-1] - rows[0] + 1 == len(rows) and np.all(np.diff(rows) == 1))


def write_similar(results: Iterable[Result], out: IO[str], fmt: str = "tsv") -> int:
    """Writes results as TSV (`query_id, rank, similar_id, score`, rank from 1) or JSON
    Lines (`{"id", "similar": [{"id", "score"}, ...]}`); returns the query count."""
    if fmt not in SIMILAR_FORMATS:
        raise ValueError(f"unknown format '{fmt}' (valid: {', '.join(SIMILAR_FORMATS)})")
    count = 0
    if fmt == "tsv":
        out.write("query_id\trank\tsimilar_id\tscore\n")
    for query, neighbours in results:
        if fmt == "tsv":
            out.write("".join(f"{query}\t{rank}\t{vid}\t{score:.6f}\n"
                              for rank, (vid, score) in enumerate(neighbours, start=1)))
        else:
            out.write(json.dumps({"id": query, "similar": [
                {"id": vid, "score": round(score, 6)} for vid, score in neighbours]},
                ensure_ascii=False) + "\n")
        count += 1
    return count
