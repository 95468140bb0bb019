"""Similar-video search through a faiss index, built once and saved beside the embeddings.

Index kinds (`faiss.index_factory` strings, inner product on L2-normalised rows,
i.e. cosine similarity):

- `flat` (`Flat`): exact; the same results as the NumPy search of
  `videotag.retrieval.similar` (the reference the tests compare with). Not saved:
  it is a copy of the vectors, built in seconds.
- `ivf` (`IVF<nlist>,Flat`): k-means cells; a query scans the `nprobe` nearest cells.
- `hnsw` (`HNSW<M>`): a navigable small-world graph; `ef_search` candidates per query.
- `ivfpq` (`IVF<nlist>,PQ<m>x<bits>`): cells of product-quantized codes (m x bits
  bits per video instead of 32 x D): the index of collections that do not fit in
  memory. Its approximate scores are replaced by exact ones (below).
- `ivfpqfs` (`[PCA<p>,]IVF<nlist>,PQ<m>x4fs,RFlat`): the kind for all against all at
  a million. An optional PCA to p dimensions, k-means cells of 4-bit
  product-quantized codes scanned with SIMD lookup tables (faiss' "fast scan"),
  then faiss re-ranks the `(k + 1) * refine` best by exact inner product of the
  full vectors (`IndexRefineFlat`, which keeps a float copy of them: 4 KB per
  1024-d video in memory and in the file).

Every kind returns exact cosines: faiss proposes `k * refine + 1` candidates for
ivfpq (k + 1 for the others; ivfpqfs re-ranks `(k + 1) * refine` inside faiss), their
cosines are computed from the embeddings (as the NumPy search does: the row divided
by its norm), and the k best are kept by score, then row, with the query's own video
left out. So results differ from the exact search only
where the index missed a true neighbour (recall), never in the scores.

Files, beside the embeddings of prefix P: `P.<kind>.faiss` (`faiss.write_index`)
and `P.<kind>.json` (the settings, the vectors' count and dimension, and the stamp
of the embedding files they were built from: a changed file makes the index stale).
Each file is written whole through `videotag.files.open_output` (a temporary file,
synced, swapped in): a failed write leaves the previous file as it was.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from videotag.errors import ConfigError, DataError
from videotag.files import open_output, write_text
from videotag.retrieval.vectors import Embeddings

INDEX_KINDS = ("flat", "ivf", "hnsw", "ivfpq", "ivfpqfs")
QUANTIZED = ("ivfpq", "ivfpqfs")
_BLOCK = 65536  # rows normalised and added at once


@dataclass
class IndexSettings:
    """How an index is built.

    Attributes:
        kind: one of `INDEX_KINDS`.
        nlist: IVF cells; 0: 4 sqrt(N), at most N / 39 (faiss' k-means wants 39
            training vectors per cell).
        hnsw_m: HNSW neighbours per node (memory: 2 M ints per video).
        ef_construction: HNSW candidates while building (higher: better graph, slower).
        pq_m: PQ sub-quantizers (bytes per video at 8 bits); 0: D / 16 (ivfpq), D / 2
            or the PCA's dimensions / 2 (ivfpqfs); must divide them.
        pq_bits: bits per sub-quantizer code (ivfpq); 0: 8, fewer for small
            collections (256 centroids need 39 x 256 training vectors). ivfpqfs: 4.
        pca: ivfpqfs's PCA dimensions; 0 (or D or more): no PCA (on the benchmark's
            clustered embeddings a PCA to D / 4 lost a quarter of the variance and
            recall 0.79 at most, against 0.91 without, at 100k).
        train_size: vectors the k-means learns from (a seeded random sample); 0:
            min(N, 64 x nlist, 256 x 39 for PQ).
        seed: the sample's and k-means' seed.
    """

    kind: str = "ivf"
    nlist: int = 0
    hnsw_m: int = 32
    ef_construction: int = 80
    pq_m: int = 0
    pq_bits: int = 0
    train_size: int = 0
    seed: int = 0
    pca: int = 0

    def resolved(self, n: int, d: int) -> "IndexSettings":
        """The settings with every automatic value (0) fixed for N vectors of D dims.

        Raises:
            ConfigError: an unknown kind or a PQ size that does not divide D.
        """
        if self.kind not in INDEX_KINDS:
            raise ConfigError(f"unknown index '{self.kind}' (valid: {', '.join(INDEX_KINDS)})")
        out = IndexSettings(**asdict(self))
        if self.kind in ("ivf",) + QUANTIZED:
            out.nlist = self.nlist or max(1, min(round(4 * math.sqrt(n)), n // 39))
        if self.kind == "ivfpqfs":
            out.pca = self.pca if self.pca < d else 0
            out.pq_bits = 4
        size = out.pca or d
        if self.kind in QUANTIZED:
            out.pq_m = self.pq_m or max(1, size // (16 if self.kind == "ivfpq" else 2))
            if size % out.pq_m:
                raise ConfigError(f"--pq_m={out.pq_m} must divide the size {size}")
            out.pq_bits = out.pq_bits or max(1, min(8, int(math.log2(max(2, n // 39)))))
        wanted = {"ivf": 64 * out.nlist, "ivfpq": max(64 * out.nlist, 39 << out.pq_bits),
                  "ivfpqfs": max(64 * out.nlist, 39 << 4)}
        out.train_size = min(n, self.train_size or wanted.get(self.kind, 0))
        return out

    def factory(self) -> str:
        """The `faiss.index_factory` description (of resolved settings)."""
        pca = f"PCA{self.pca}," if self.pca else ""
        return {"flat": "Flat", "ivf": f"IVF{self.nlist},Flat", "hnsw": f"HNSW{self.hnsw_m}",
                "ivfpq": f"IVF{self.nlist},PQ{self.pq_m}x{self.pq_bits}",
                "ivfpqfs": f"{pca}IVF{self.nlist},PQ{self.pq_m}x4fs,RFlat"}[self.kind]


@dataclass
class SearchSettings:
    """Query-time knobs.

    Attributes:
        nprobe: IVF cells scanned per query (ivf, ivfpq, ivfpqfs).
        ef_search: HNSW candidates per query (at least k + 1 are used).
        refine: ivfpq proposes k x refine candidates, rescored exactly; ivfpqfs
            re-ranks (k + 1) x refine candidates in faiss.
        batch: queries per faiss call.
    """

    nprobe: int = 16
    ef_search: int = 64
    refine: int = 4
    batch: int = 4096


@dataclass
class IndexInfo:
    """What `P.<kind>.json` holds."""

    settings: IndexSettings
    count: int
    dim: int
    stamp: List[list] = field(default_factory=list)
    build_seconds: float = 0.0


def require_faiss() -> None:
    """Fails with an install hint when faiss is missing.

    Raises:
        ConfigError: faiss cannot be imported.
    """
    try:
        import faiss  # noqa: F401
    except ImportError:
        raise ConfigError('indexes need faiss: pip install "videotag[faiss]" (or ".[faiss]" in '
                          "a clone), or search without --index (exact)") from None


def _normalized(block) -> np.ndarray:
    import faiss

    rows = np.array(block, dtype=np.float32, order="C")
    faiss.normalize_L2(rows)
    return rows


def build_index(vectors, settings: IndexSettings, verbose: bool = False):
    """A faiss index of `vectors` (float [N, D], array or memory map), rows normalised.

    Returns:
        (the index, the resolved settings).
    """
    require_faiss()
    import faiss

    n, d = vectors.shape
    if n == 0:
        raise DataError("no embeddings to index")
    settings = settings.resolved(n, d)
    index = faiss.index_factory(d, settings.factory(), faiss.METRIC_INNER_PRODUCT)
    if settings.kind == "hnsw":
        index.hnsw.efConstruction = settings.ef_construction
    if not index.is_trained:
        rng = np.random.default_rng(settings.seed)
        sample = np.sort(rng.choice(n, settings.train_size, replace=False))
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.cp.seed = settings.seed
        if isinstance(ivf, faiss.IndexIVFPQ):
            # polysemous codes (a Hamming pre-filter) are not used: their training, a
            # simulated annealing, would take most of the build
            ivf.do_polysemous_training = False
        index.train(_normalized(vectors[sample]))
    for start in range(0, n, _BLOCK):
        index.add(_normalized(vectors[start:start + _BLOCK]))
    return index, settings


def _files(prefix: str, kind: str) -> Tuple[str, str]:
    return f"{prefix}.{kind}.faiss", f"{prefix}.{kind}.json"


def save_index(index, info: IndexInfo, prefix: str) -> str:
    """Writes `P.<kind>.faiss` and `P.<kind>.json`; returns the index file."""
    import faiss

    data_file, info_file = _files(prefix, info.settings.kind)
    with open_output(data_file, binary=True, what="faiss index") as out:
        faiss.write_index(index, faiss.PyCallbackIOWriter(out.write))
    write_text(info_file, json.dumps(asdict(info), indent=1), what="faiss index settings")
    return data_file


def load_index(prefix: str, kind: str, embeddings: Embeddings):
    """The saved index of `kind` for these embeddings, or None when there is none or
    it was built from other embedding files (stale)."""
    import faiss
    import tensorflow as tf

    data_file, info_file = _files(prefix, kind)
    if not (tf.io.gfile.exists(data_file) and tf.io.gfile.exists(info_file)):
        return None
    with tf.io.gfile.GFile(info_file, "rb") as f:
        raw = json.loads(f.read().decode("utf-8"))
    if raw.get("stamp") != embeddings.stamp or raw.get("count") != len(embeddings.ids):
        return None
    with tf.io.gfile.GFile(data_file, "rb") as f:  # streamed: no second copy in memory
        index = faiss.read_index(faiss.PyCallbackIOReader(f.read))
    return index


def index_for(embeddings: Embeddings, prefix: str, settings: IndexSettings,
              log=None) -> object:
    """The index of `settings.kind` for `embeddings`: the saved one when it is up to
    date, else built now and (but for flat) saved beside the embeddings.

    Args:
        log: a function printing one line (building and saving are reported).
    """
    require_faiss()
    if settings.kind != "flat":
        index = load_index(prefix, settings.kind, embeddings)
        if index is not None:
            return index
    began = time.time()
    if log and settings.kind != "flat":
        log(f"building the {settings.kind} index of {len(embeddings.ids)} videos (once: it "
            f"is saved beside the embeddings)")
    index, resolved = build_index(embeddings.vectors, settings)
    if settings.kind != "flat":
        info = IndexInfo(resolved, len(embeddings.ids), int(embeddings.vectors.shape[1]),
                         embeddings.stamp, time.time() - began)
        path = save_index(index, info, prefix)
        if log:
            log(f"built {resolved.factory()} in {info.build_seconds:.1f} s: {path}")
    return index


def _configure(index, search: SearchSettings, k: int) -> None:
    """Sets the query-time knobs on `index` (through its re-rank and PCA wrappers)."""
    import faiss

    space = faiss.ParameterSpace()
    inner = faiss.downcast_index(index)
    if isinstance(inner, faiss.IndexRefine):
        space.set_index_parameter(index, "k_factor_rf", search.refine)
        inner = faiss.downcast_index(inner.base_index)
    if isinstance(inner, faiss.IndexPreTransform):
        inner = faiss.downcast_index(inner.index)
    if isinstance(inner, faiss.IndexIVF):
        space.set_index_parameter(index, "nprobe", search.nprobe)
    if isinstance(inner, faiss.IndexHNSW):
        space.set_index_parameter(index, "efSearch", max(search.ef_search, k + 1))


def _rescored(vectors, unit: np.ndarray, candidates: np.ndarray, own: np.ndarray,
              k: int) -> Tuple[np.ndarray, np.ndarray]:
    """The k best of each query's candidates [q, w] (-1: none) by exact cosine, then
    row, leaving out the query's own row."""
    q, w = candidates.shape
    valid = (candidates >= 0) & (candidates != own[:, None])
    flat = np.where(valid, candidates, 0).ravel()
    order = np.argsort(flat, kind="stable")  # rows in file order: a memory map reads ahead
    gathered = np.empty((flat.size, vectors.shape[1]), np.float32)
    gathered[order] = vectors[flat[order]]
    cand = gathered.reshape(q, w, -1)
    norms = np.linalg.norm(cand, axis=2)
    scores = np.einsum("qwd,qd->qw", cand, unit) / np.where(norms > 0, norms, 1.0)
    scores = np.where(valid, scores, -np.inf).astype(np.float32)
    rows = np.where(valid, candidates, -1)
    best = np.lexsort((np.where(valid, candidates, np.iinfo(np.int64).max), -scores),
                      axis=1)[:, :k]
    found = np.take_along_axis(rows, best, axis=1)
    values = np.take_along_axis(scores, best, axis=1)
    if found.shape[1] < k:  # fewer vectors than k
        pad = k - found.shape[1]
        found = np.pad(found, ((0, 0), (0, pad)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, pad)), constant_values=-np.inf)
    return found, values


def search_index(index, vectors, rows: np.ndarray, k: int,
                 search: SearchSettings = SearchSettings(),
                 queries: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """The k most cosine-similar rows of `vectors` for each query, through `index`.

    Args:
        index: a faiss index of `vectors` (`build_index`).
        vectors: float [N, D], for the exact scores of the candidates.
        rows: int [q], each query's own row (left out of its results), or -1 for a
            query that is not one of the videos.
        k: neighbours per query.
        search: the query-time knobs.
        queries: float [q, D]; default `vectors[rows]`.

    Returns:
        (indices int64 [q, k], scores float32 [q, k]), best first; where an
        approximate index found fewer than k candidates, -1 and -inf.
    """
    import faiss

    _configure(index, search, k)
    refine = search.refine if isinstance(faiss.downcast_index(index), faiss.IndexIVFPQ) else 1
    wanted = min(index.ntotal, k * refine + 1)
    rows = np.asarray(rows, np.int64)
    out_index = np.empty((len(rows), k), np.int64)
    out_score = np.empty((len(rows), k), np.float32)
    for start in range(0, len(rows), search.batch):
        own = rows[start:start + search.batch]
        unit = _normalized(vectors[own] if queries is None
                           else queries[start:start + search.batch])
        _, found = index.search(unit, wanted)
        for sub in range(0, len(own), 1024):  # bounds the gathered candidates' memory
            part = slice(sub, sub + 1024)
            out = _rescored(vectors, unit[part], found[part], own[part], k)
            out_index[start + sub:start + sub + len(own[part])] = out[0]
            out_score[start + sub:start + sub + len(own[part])] = out[1]
    return out_index, out_score


def similar_with_index(embeddings: Embeddings, index, query_ids: Optional[Sequence[str]],
                       k: int, search: SearchSettings = SearchSettings(),
                       verbose: bool = False, progress_seconds: float = 10.0
                       ) -> Iterator[Tuple[str, List[Tuple[str, float]]]]:
    """(query id, [(similar id, cosine), ...]) for each query id, or for every video
    when `query_ids` is None: `videotag.retrieval.similar_videos` through an index.

    Raises:
        DataError: a query id is not among the embeddings.
    """
    from videotag.progress import Progress
    from videotag.retrieval.similar import query_rows

    ids = embeddings.ids
    rows = query_rows(ids, query_ids)
    progress = Progress("searched", every=progress_seconds if verbose else 0)
    for start in range(0, len(rows), search.batch):
        block = rows[start:start + search.batch]
        found, scores = search_index(index, embeddings.vectors, block, k, search)
        for row, neighbours, values in zip(block, found, scores):
            yield ids[row], [(ids[j], float(s)) for j, s in zip(neighbours, values) if j >= 0]
        progress.add(len(block))
    progress.close()


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean over queries of |found ∩ exact| / |exact| (rows of ids; -1 entries ignored)."""
    hits = [len(set(f[f >= 0]) & set(e[e >= 0])) / max(1, int((e >= 0).sum()))
            for f, e in zip(found, exact)]
    return float(np.mean(hits)) if hits else 1.0


def measure_recall(index, vectors, queries: int, k: int,
                   search: SearchSettings = SearchSettings(),
                   seed: int = 0) -> Tuple[float, float]:
    """(recall@k, queries per second) of `index` on `queries` random rows of `vectors`,
    against the exact NumPy search (`videotag.retrieval.similar.top_k_similar`)."""
    from videotag.retrieval.similar import top_k_similar

    n = vectors.shape[0]
    rows = np.sort(np.random.default_rng(seed).choice(n, min(queries, n), replace=False))
    exact, _ = top_k_similar(np.asarray(vectors[rows]), vectors, k, exclude=rows)
    began = time.perf_counter()
    found, _ = search_index(index, vectors, rows, k, search)
    seconds = time.perf_counter() - began
    return recall_at_k(found, exact), len(rows) / max(seconds, 1e-9)
