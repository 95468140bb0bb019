"""Embeddings files and exact similar-video search, against brute force."""

import io
import json

import numpy as np
import pytest
import tensorflow as tf

from videotag.errors import DataError
from videotag.retrieval import (
    l2_normalize,
    load_embeddings,
    similar_videos,
    top_k_similar,
    write_embeddings,
    write_similar,
)
from videotag.retrieval.embeddings import _npy_header


def _brute_force(vectors, queries, k, exclude=None):
    """Full score matrix, one stable sort per query: by score descending, then index."""
    x, q = l2_normalize(vectors), l2_normalize(queries)
    scores = q @ x.T
    out_i, out_s = [], []
    for r, row in enumerate(scores):
        order = [j for j in np.lexsort((np.arange(len(row)), -row))
                 if exclude is None or j != exclude[r]][:k]
        out_i.append(order)
        out_s.append(row[order])
    return np.array(out_i, np.int64).reshape(len(q), -1), np.array(out_s).reshape(len(q), -1)


@pytest.mark.parametrize("block_size", [1, 7, 64, 1000])
@pytest.mark.parametrize("k", [1, 5, 119, 200])
def test_top_k_matches_brute_force_on_random_data(block_size, k):
    rng = np.random.default_rng(k * 1000 + block_size)
    vectors = rng.normal(size=(120, 16)).astype(np.float32)
    rows = np.array([0, 5, 119, 60])
    index, scores = top_k_similar(vectors[rows], vectors, k, block_size, exclude=rows)
    want_i, want_s = _brute_force(vectors, vectors[rows], min(k, 119), exclude=rows)
    assert index.shape == (4, min(k, 119))  # k > N - 1 gives every other video
    np.testing.assert_array_equal(index, want_i)
    np.testing.assert_allclose(scores, want_s, rtol=1e-5, atol=1e-6)
    assert not np.any(index == rows[:, None])  # never the query itself
    # float64 files are converted block by block, to the same answer
    index64, _ = top_k_similar(vectors[rows], vectors.astype(np.float64), k, block_size,
                               exclude=rows)
    np.testing.assert_array_equal(index64, want_i)
    # without exclusion, a video is its own best match
    index, scores = top_k_similar(vectors[rows], vectors, 1, block_size)
    np.testing.assert_array_equal(index[:, 0], rows)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("block_size", [2, 3, 100])
def test_ties_break_by_index_whatever_the_blocks(block_size):
    # one-hot vectors: every cosine is exactly 0 or 1, so there are many exact ties
    e = np.eye(4, dtype=np.float32)
    vectors = np.stack([e[0], e[1], e[0], e[0], e[2], e[0] * 3, e[1], e[3], np.zeros(4, np.float32)])
    index, scores = top_k_similar(vectors[[0]], vectors, 6, block_size, exclude=np.array([0]))
    # rows 2, 3, 5 are e0 (5 is scaled: cosine 1 too); then the zeros, by index
    assert index[0].tolist() == [2, 3, 5, 1, 4, 6]
    assert scores[0].tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    want_i, _ = _brute_force(vectors, vectors[[0]], 6, exclude=[0])
    np.testing.assert_array_equal(index, want_i)


def test_similar_videos_by_id_and_for_all():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(50, 8)).astype(np.float32)
    ids = [f"v{i:02d}" for i in range(50)]
    every = dict(similar_videos(ids, vectors, None, k=3, block_size=16))
    assert len(every) == 50
    some = dict(similar_videos(ids, vectors, ["v07", "v42", "v07"], k=3, block_size=16))
    assert some["v07"] == every["v07"] and some["v42"] == every["v42"]
    want_i, want_s = _brute_force(vectors, vectors[[42]], 3, exclude=[42])
    assert [vid for vid, _ in every["v42"]] == [ids[j] for j in want_i[0]]
    with pytest.raises(DataError, match="not in the embeddings: nope"):
        list(similar_videos(ids, vectors, ["v01", "nope"]))
    # a single video has no similar videos
    assert list(similar_videos(["only"], vectors[:1], ["only"])) == [("only", [])]


def test_non_finite_embeddings_are_reported():
    vectors = np.ones((10, 4), np.float32)
    vectors[6, 2] = np.nan
    with pytest.raises(DataError, match="embedding row 6 holds NaN"):
        top_k_similar(vectors[:1], vectors, 3, block_size=4)


def test_write_similar_formats():
    results = [("a", [("b", 0.5), ("c", 0.25)]), ("b", [("a", 0.5)])]
    out = io.StringIO()
    assert write_similar(results, out, "tsv") == 2
    assert out.getvalue() == ("query_id\trank\tsimilar_id\tscore\n"
                              "a\t1\tb\t0.500000\na\t2\tc\t0.250000\nb\t1\ta\t0.500000\n")
    out = io.StringIO()
    write_similar(results, out, "jsonl")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"id": "a", "similar": [{"id": "b", "score": 0.5}, {"id": "c", "score": 0.25}]}


def test_embeddings_files_stream_normalised_rows(tmp_path):
    rng = np.random.default_rng(2)
    blocks = [rng.normal(size=(n, 6)).astype(np.float32) for n in (5, 1, 7)]
    blocks[1][0] = 0.0  # a zero vector stays zero
    ids = [[f"id{i}-{j}" for j in range(len(b))] for i, b in enumerate(blocks)]
    count, dim = write_embeddings(zip(ids, blocks), str(tmp_path / "out" / "emb"),
                                  formats=("npy", "tfrecord"), verbose=False)
    assert (count, dim) == (13, 6)
    got_ids, vectors = load_embeddings(str(tmp_path / "out" / "emb"))
    assert isinstance(vectors, np.memmap) and vectors.dtype == np.float32
    everything = np.concatenate(blocks)
    want = everything / np.maximum(np.linalg.norm(everything, axis=1, keepdims=True), 1e-30)
    np.testing.assert_allclose(vectors, want, rtol=1e-6, atol=1e-7)
    assert np.all(vectors[5] == 0)
    assert got_ids == sum(ids, [])
    spec = {"id": tf.io.FixedLenFeature([], tf.string),
            "embedding": tf.io.FixedLenFeature([6], tf.float32)}
    parsed = [tf.io.parse_single_example(r, spec)
              for r in tf.data.TFRecordDataset(str(tmp_path / "out" / "emb.tfrecord"))]
    assert [p["id"].numpy().decode() for p in parsed] == got_ids
    np.testing.assert_array_equal(np.stack([p["embedding"].numpy() for p in parsed]), vectors)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "emb.ids.txt", "emb.npy", "emb.tfrecord"]


def test_npy_header_has_room_for_any_count(tmp_path):
    for rows in (0, 1, 10**6, 10**15):
        header = _npy_header(rows, 1024)
        assert len(header) == 128
        path = tmp_path / "h.npy"
        path.write_bytes(header)
        with open(path, "rb") as f:
            assert np.lib.format.read_magic(f) == (1, 0)
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        assert (shape, fortran, dtype) == ((rows, 1024), False, np.dtype("<f4"))


def test_failed_writes_leave_no_files(tmp_path):
    def batches():
        yield ["a", "b"], np.ones((2, 3), np.float32)
        raise DataError("bad record")

    with pytest.raises(DataError, match="bad record"):
        write_embeddings(batches(), str(tmp_path / "emb"), formats=("npy", "tfrecord"),
                         verbose=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match="line break"):
        write_embeddings([(["a\nb"], np.ones((1, 3), np.float32))], str(tmp_path / "emb"),
                         verbose=False)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "x.npy").write_bytes(_npy_header(0, 3))
    (tmp_path / "x.ids.txt").write_text("extra\n")
    with pytest.raises(DataError, match="has 1 ids but .* has 0 rows"):
        load_embeddings(str(tmp_path / "x"))
