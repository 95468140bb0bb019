"""Similar-video search through faiss, against the exact NumPy search: the flat index
gives its results; the approximate indexes reach a stated recall on clustered data;
an index is built once, saved beside the embeddings and rebuilt when they change;
the commands build and use it.

faiss runs on one thread here: its OpenMP k-means over tiny sub-spaces is up to 100x
slower with 2 threads on a machine busy with other jobs (the results are the same).
"""

import json

import numpy as np
import pytest

from tests.helpers import finish_processes, start_process
from videotag.retrieval import load_vectors, similar_videos, top_k_similar, write_embeddings
from videotag.retrieval.index import (
    IndexSettings,
    SearchSettings,
    build_index,
    index_for,
    recall_at_k,
    search_index,
    similar_with_index,
)


ONE_THREAD = {"OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_faiss_thread():
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def clustered(n, d, clusters, seed=0, spread=0.35):
    """Unit vectors around `clusters` random centres (the shape of a trained model's
    embeddings: videos of a class close together), plus a few outliers."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    x = centres[rng.integers(0, clusters, n)] + spread * rng.normal(size=(n, d)) / np.sqrt(d)
    x[: n // 50] = rng.normal(size=(n // 50, d))  # 2% belong to no cluster
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_the_flat_index_gives_the_exact_search():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(3000, 24)).astype(np.float32) * rng.uniform(0.5, 2, (3000, 1))
    rows = np.arange(0, 3000, 37)
    want_i, want_s = top_k_similar(vectors[rows], vectors, 10, exclude=rows)
    index, _ = build_index(vectors, IndexSettings("flat"))
    got_i, got_s = search_index(index, vectors, rows, 10, SearchSettings(batch=16))
    np.testing.assert_array_equal(got_i, want_i)
    np.testing.assert_allclose(got_s, want_s, rtol=0, atol=1e-6)
    ids = [f"v{i}" for i in range(len(vectors))]
    from videotag.retrieval import Embeddings

    every = list(similar_with_index(Embeddings(ids, vectors, []), index, None, 5))
    exact = list(similar_videos(ids, vectors, None, 5, block_size=500))
    assert [[v for v, _ in n] for _, n in every] == [[v for v, _ in n] for _, n in exact]
    assert max(abs(a - b) for (_, x), (_, y) in zip(every, exact)
               for (_, a), (_, b) in zip(x, y)) <= 1e-6


@pytest.mark.parametrize("kind,search,floor", [
    ("ivf", SearchSettings(nprobe=8), 0.95),
    ("hnsw", SearchSettings(ef_search=48), 0.95),
    ("ivfpq", SearchSettings(nprobe=8, refine=8), 0.9),
    ("ivfpqfs", SearchSettings(nprobe=8, refine=8), 0.9),
])
def test_approximate_indexes_reach_their_recall_on_clustered_data(kind, search, floor):
    vectors = clustered(6000, 48, clusters=60, seed=1)
    rows = np.arange(0, 6000, 29)
    exact, exact_scores = top_k_similar(vectors[rows], vectors, 10, exclude=rows)
    settings = IndexSettings(kind, hnsw_m=16, ef_construction=40, pq_m=12, pq_bits=6, pca=24)
    index, resolved = build_index(vectors, settings)
    if kind == "ivfpqfs":  # the PCA, 4-bit fast-scan codes and exact re-ranking of faiss
        assert resolved.factory() == "PCA24,IVF153,PQ12x4fs,RFlat"
    found, scores = search_index(index, vectors, rows, 10, search)
    assert recall_at_k(found, exact) >= floor
    # found neighbours carry their exact cosines, in order, never the query itself
    for r, f, s in zip(rows, found, scores):
        assert r not in f and np.all(np.diff(s) <= 0)
        np.testing.assert_allclose(s, vectors[f] @ vectors[r], atol=1e-5)
    # a sharper search finds at least as much
    wider = SearchSettings(nprobe=resolved.nlist, ef_search=400, refine=40)
    assert recall_at_k(search_index(index, vectors, rows, 10, wider)[0], exact) >= floor


def test_an_index_is_built_once_saved_and_rebuilt_when_the_embeddings_change(tmp_path):
    vectors = clustered(2000, 16, clusters=20, seed=2)
    ids = [f"v{i}" for i in range(len(vectors))]
    prefix = str(tmp_path / "emb")
    write_embeddings([(ids, vectors)], prefix, ["npy"], verbose=False)
    said = []
    first = index_for(load_vectors(prefix), prefix, IndexSettings("hnsw"), said.append)
    assert said[0].startswith("building the hnsw index of 2000 videos")
    assert (tmp_path / "emb.hnsw.faiss").is_file() and (tmp_path / "emb.hnsw.json").is_file()
    said.clear()
    again = index_for(load_vectors(prefix), prefix, IndexSettings("hnsw"), said.append)
    assert said == [] and again.ntotal == first.ntotal == 2000  # loaded, not rebuilt
    write_embeddings([(ids[:1500], vectors[:1500])], prefix, ["npy"], verbose=False)
    index_for(load_vectors(prefix), prefix, IndexSettings("hnsw"), said.append)
    assert said and said[0].startswith("building the hnsw index of 1500 videos")


def test_a_failed_index_write_leaves_the_previous_index(tmp_path, monkeypatch):
    import faiss

    vectors = clustered(500, 8, clusters=5, seed=3)
    prefix = str(tmp_path / "emb")
    write_embeddings([([f"v{i}" for i in range(500)], vectors)], prefix, ["npy"],
                     verbose=False)
    index_for(load_vectors(prefix), prefix, IndexSettings("hnsw"), lambda _: None)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert "emb.hnsw.faiss" in before and "emb.hnsw.json" in before

    def half_then_fail(index, write):
        write(b"partial index bytes")
        raise RuntimeError("disk went away")

    # faiss writes through the callback it is given: here a part, then it fails
    monkeypatch.setattr(faiss, "PyCallbackIOWriter", lambda write: write)
    monkeypatch.setattr(faiss, "write_index", half_then_fail)
    write_embeddings([([f"v{i}" for i in range(400)], vectors[:400])], prefix, ["npy"],
                     verbose=False)
    embeddings = {p.name: p.read_bytes() for p in tmp_path.iterdir() if "hnsw" not in p.name}
    with pytest.raises(RuntimeError, match="disk went away"):
        index_for(load_vectors(prefix), prefix, IndexSettings("hnsw"), lambda _: None)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert after == {**before, **embeddings}  # the old index whole, no temporary file


def test_build_index_and_similar_commands(tmp_path):
    vectors = clustered(3000, 32, clusters=30, seed=4)
    ids = [f"v{i:04d}" for i in range(len(vectors))]
    prefix = str(tmp_path / "emb")
    write_embeddings([(ids, vectors)], prefix, ["npy", "tfrecord"], verbose=False)
    build = start_process(["tools/build_index.py", f"--embeddings={prefix}", "--index=ivf",
                           "--nlist=30", "--recall_queries=300"], env=ONE_THREAD)
    similar = start_process(["-m", "videotag", "similar", f"--embeddings={prefix}", "--all",
                             "--top_k=5", "--index=flat", f"--output_file={tmp_path / 'f.tsv'}"],
                            env=ONE_THREAD)
    (code, _, err), (code2, _, err2) = finish_processes([build, similar])
    assert code == 0 and code2 == 0, err + err2
    assert "built IVF30,Flat of 3000 videos (32 dimensions)" in err
    recall = float(err.split("recall@10 ")[1].split()[0])
    assert recall >= 0.95
    exact = list(similar_videos(ids, vectors, None, 5))
    rows = (tmp_path / "f.tsv").read_text().splitlines()[1:]
    assert [r.split("\t")[2] for r in rows] == [v for _, n in exact for v, _ in n]
    # the saved ivf index, through similar, on batch-embed's shard layout (a single file)
    (tmp_path / "emb.npy").unlink()
    query = start_process(["tools/similar.py", f"--embeddings={prefix}", "--query_id=v0007",
                           "--index=ivf", "--nprobe=30", "--top_k=5", "--format=jsonl"],
                          env=ONE_THREAD)
    ((code, out, err),) = finish_processes([query])
    assert code == 0, err
    assert "building the ivf index" in err  # its embeddings changed: rebuilt
    (line,) = out.splitlines()
    assert [v["id"] for v in json.loads(line)["similar"]] == [v for v, _ in exact[7][1]]
