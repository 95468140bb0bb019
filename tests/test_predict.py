"""Prediction rows from a model directory and a SavedModel, the three output formats,
streaming, and embeddings from both sources."""

import io
import json

import keras
import numpy as np
import pytest

import videotag
from tests.helpers import frame_record, tiny_config, write_file
from videotag.errors import DataError
from videotag.export import export_saved_model
from videotag.inference import (
    Prediction,
    predict_from_model_dir,
    predict_from_saved_model,
    write_predictions,
    write_predictions_file,
)
from videotag.progress import Progress
from videotag.retrieval import embedding_batches


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model directory (config.yaml + model.keras) of a tags + category model, its
    export and a shard of 11 records."""
    root = tmp_path_factory.mktemp("predict")
    (root / "categories.txt").write_text("news\nsports\nmusic\n")
    cfg = tiny_config(**{"data.num_categories": 3, "model.head.tasks": "[tags, category]",
                         "data.category_file": str(root / "categories.txt")})
    model = videotag.build_model(cfg)
    model_dir = root / "model"
    model_dir.mkdir()
    cfg.save(model_dir / "config.yaml")
    model.save(model_dir / "model.keras")
    exported = export_saved_model(model, cfg, str(root / "exports"))
    records = [frame_record(f"vid{i}".encode(), labels=(i % 10,), category=i % 3, seed=i,
                            frames=2 + i) for i in range(11)]
    shard = write_file(root / "test0000.tfrecord", records)
    return model, cfg, model_dir, exported, shard, root


def test_model_dir_and_saved_model_give_the_same_rows(trained):
    model, cfg, model_dir, exported, shard, _ = trained
    a = list(predict_from_model_dir(str(model_dir), shard, top_k=4, batch_size=4))
    b = list(predict_from_saved_model(str(exported), shard, top_k=4, batch_size=3))
    assert [r.video_id for r in a] == [f"vid{i}" for i in range(11)] == [r.video_id for r in b]
    for x, y in zip(a, b):
        assert [t[:2] for t in x.tags] == [t[:2] for t in y.tags] and len(x.tags) == 4
        np.testing.assert_allclose([t[2] for t in x.tags], [t[2] for t in y.tags], atol=1e-5)
        assert x.category[:2] == y.category[:2] and x.category[1] in ("news", "sports", "music")
        np.testing.assert_allclose(x.category[2], y.category[2], atol=1e-5)
    # the rows are the Keras model's top 4 tags and its most probable category
    from videotag.data import make_dataset, model_inputs

    batch = next(iter(make_dataset(cfg.data, shard, 16, training=False)))
    out = {k: keras.ops.convert_to_numpy(v) for k, v in model(model_inputs(cfg.data, batch)).items()}
    for row, tags, category in zip(a, out["tags"], out["category"]):
        assert [t[0] for t in row.tags] == np.argsort(-tags, kind="stable")[:4].tolist()
        np.testing.assert_allclose([t[2] for t in row.tags], np.sort(tags)[::-1][:4], rtol=1e-5)
        assert row.category[0] == int(np.argmax(category))


def test_records_without_targets_are_predicted(trained, tmp_path):
    """Videos to tag have no labels and no category: a multi-task model reads them."""
    _, _, model_dir, exported, _, _ = trained
    shard = write_file(tmp_path / "new.tfrecord", [frame_record(b"new", labels=())])
    for rows in (predict_from_model_dir(str(model_dir), shard),
                 predict_from_saved_model(str(exported), shard)):
        (row,) = list(rows)
        assert row.video_id == "new" and len(row.tags) == 10 and row.category is not None


def test_embeddings_from_both_sources_are_the_keras_embeddings(trained):
    model, cfg, model_dir, exported, shard, _ = trained
    (ids_a, emb_a), = list(embedding_batches(shard, model_dir=str(model_dir), batch_size=16))
    ids_b, emb_b = zip(*embedding_batches(shard, saved_model=str(exported), batch_size=5))
    assert ids_a == sum(ids_b, [])
    np.testing.assert_allclose(emb_a, np.concatenate(emb_b), rtol=1e-4, atol=1e-5)
    from videotag.data import make_dataset, model_inputs

    batch = next(iter(make_dataset(cfg.data, shard, 16, training=False)))
    want = keras.ops.convert_to_numpy(model(model_inputs(cfg.data, batch))["embedding"])
    np.testing.assert_allclose(emb_a, want, rtol=1e-4, atol=1e-5)


def test_a_rejected_record_is_named_by_shard_and_index(trained, tmp_path):
    _, _, _, exported, _, _ = trained
    records = [frame_record(f"ok{i}".encode(), seed=i) for i in range(6)]
    records.append(frame_record(b"short", rgb_size=1000))
    shard = write_file(tmp_path / "bad.tfrecord", records)
    with pytest.raises(DataError) as info:
        list(predict_from_saved_model(str(exported), shard, batch_size=4))
    assert str(info.value) == (f"{shard}: record 6 (id short): feature list rgb: frame 0 "
                               "has 1000 bytes, expected 1024 (3 of 3 frames wrong)")
    shard = write_file(tmp_path / "garbage.tfrecord", records[:5] + [b"not a record"])
    with pytest.raises(DataError, match=r"garbage.tfrecord: record 5: not a serialized SequenceExample"):
        list(predict_from_saved_model(str(exported), shard, batch_size=4))


ROWS = [
    Prediction("a", [(3, "Cat", 0.9), (1, "Dog", 0.5), (7, "Car", 0.05)], (2, "music", 0.7)),
    Prediction("b", [(1, "Dog", 0.25), (3, "Cat", 0.125)], (0, "news", 0.5)),
]


def _write(rows, fmt, **kw):
    out = io.StringIO()
    count = write_predictions(rows, out, fmt, verbose=False, **kw)
    return count, out.getvalue()


def test_kaggle_csv():
    count, text = _write(ROWS, "csv", threshold=0.1)
    assert count == 2
    assert text == "VideoId,LabelConfidencePairs\na,3 0.900000 1 0.500000\nb,1 0.250000 3 0.125000\n"


def test_videotag_json_of_seed_002():
    _, text = _write(ROWS, "json", threshold=0.2)
    assert json.loads(text) == [
        ["a", {"class_name": "Cat", "probability": 0.9, "class_id": 3},
         {"class_name": "Dog", "probability": 0.5, "class_id": 1}],
        ["b", {"class_name": "Dog", "probability": 0.25, "class_id": 1}],
    ]
    assert json.loads(_write([], "json")[1]) == []


def test_json_lines_carry_the_category():
    _, text = _write(ROWS, "jsonl", threshold=0.3)
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines == [
        {"id": "a", "tags": [{"id": 3, "name": "Cat", "probability": 0.9},
                             {"id": 1, "name": "Dog", "probability": 0.5}],
         "category": {"id": 2, "name": "music", "probability": 0.7}},
        {"id": "b", "tags": [], "category": {"id": 0, "name": "news", "probability": 0.5}},
    ]
    # a category-only model: no tags key; the CSV and JSON then hold the category
    only = [Prediction("c", None, (1, "sports", 0.75))]
    assert json.loads(_write(only, "jsonl")[1]) == {
        "id": "c", "category": {"id": 1, "name": "sports", "probability": 0.75}}
    assert _write(only, "csv", threshold=0.9)[1].splitlines()[1] == "c,1 0.750000"
    # (id, tags) pairs, as older callers give them, are accepted
    assert _write([("d", [(0, "x", 1.0)])], "csv")[1].splitlines()[1] == "d,0 1.000000"


def test_rows_are_written_as_they_come():
    out = io.StringIO()
    seen = []

    def rows():
        for i in range(3):
            seen.append(out.getvalue().count("\n"))
            yield Prediction(f"v{i}", [(0, "x", 0.5)])

    write_predictions(rows(), out, "jsonl", verbose=False)
    assert seen == [0, 1, 2]  # each row is on its way out before the next is made


def test_progress_lines_count_videos():
    stream = io.StringIO()
    seconds = iter([100.0, 104.0, 110.0, 112.0, 121.0, 121.0])
    progress = Progress("predicted", every=10, stream=stream, clock=lambda: next(seconds))
    assert progress.rate() == 0.0
    for n in (5, 7, 1, 3):  # at 100 s (the clock starts), 104, 110 and 112 s
        progress.add(n)
    progress.add(4)  # at 121 s: 11 s after the last line
    assert stream.getvalue().splitlines() == ["  predicted 13 videos (1/s)",
                                             "  predicted 20 videos (1/s)"]


def test_output_file_appears_only_when_complete(tmp_path):
    target = tmp_path / "p.jsonl"

    def rows():
        yield ROWS[0]
        raise DataError("bad record")

    with pytest.raises(DataError):
        write_predictions_file(rows(), str(target), "jsonl", verbose=False)
    assert list(tmp_path.iterdir()) == []
    assert write_predictions_file(ROWS, str(target), "jsonl", verbose=False) == 2
    assert len(target.read_text().splitlines()) == 2
