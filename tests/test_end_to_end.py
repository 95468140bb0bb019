"""The CLIs end to end: train one tiny epoch, eval, export, serve in a fresh process
where videotag (and Keras) cannot be imported, predict, and compare with the Keras model."""

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import frame_record, write_file

REPO = Path(__file__).resolve().parent.parent
TINY = [
    "model.cluster_size=8", "model.groups=4", "model.hidden_size=32", "model.dropout=0.0",
    "train.learning_rate=0.01", "eval.batch_size=32", "train.eval_before_training=true",
    "model.input.normalization=none",
]


def _run(*args, check=True, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[0]} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from videotag.data.demo import ensure_demo_data

    root = tmp_path_factory.mktemp("e2e")
    demo = ensure_demo_data(root=str(root / "demo"), num_train=160, num_eval=64, num_shards=2,
                            verbose=False)
    model_dir = root / "model"
    overrides = [f"--override={o}" for o in TINY + [
        f"data.label_file={demo.label_file}", f"data.num_classes={demo.num_classes}"]]
    proc = _run("tools/train.py", "--model_name=NEXTVLAD", f"--model_dir={model_dir}",
                f"--train_data_pattern={demo.train_pattern}",
                f"--eval_data_pattern={demo.eval_pattern}", "--epochs=1", "--batch_size=32",
                *overrides)
    return demo, model_dir, root, proc


def test_train_writes_config_checkpoint_model_and_metrics(trained):
    demo, model_dir, _, proc = trained
    assert (model_dir / "config.yaml").is_file()
    assert (model_dir / "model.keras").is_file()
    assert (model_dir / "checkpoints" / "ckpt-000000005" / "model.keras").is_file()
    assert (model_dir / "checkpoints" / "ckpt-000000005" / "manifest.json").is_file()
    metrics = json.loads((model_dir / "metrics.json").read_text())
    summary = metrics["summary"]
    assert summary["epochs"] == 1 and summary["steps"] == 5  # 160 videos / 32
    assert 0.0 <= summary["validation"]["gap"] <= 1.0
    assert summary["validation"]["gap"] > summary["untrained_validation"]["gap"]
    assert summary["validation"]["num_videos"] == 64
    assert "epoch 1 validation: GAP@20" in proc.stderr
    assert "trained NEXTVLAD: 1 epochs" in proc.stderr


def test_eval_cli_reports_all_metrics(trained):
    demo, model_dir, root, _ = trained
    report = root / "eval.json"
    proc = _run("tools/eval.py", f"--model_dir={model_dir}", f"--report={report}")
    result = json.loads(report.read_text())
    for key in ("gap", "map", "map_all_classes", "hit_at_1", "hit_at_k", "perr",
                "precision_micro", "recall_micro", "f1_micro", "precision_macro",
                "recall_macro", "f1_macro"):
        assert 0.0 <= result[key] <= 1.0
    assert f"GAP@20 {result['gap']:.4f}" in proc.stdout
    assert f"PERR {result['perr']:.4f}" in proc.stdout
    # the same figure as the end-of-training evaluation of the same weights
    trained_gap = json.loads((model_dir / "metrics.json").read_text())["summary"]["validation"]["gap"]
    assert result["gap"] == pytest.approx(trained_gap, abs=1e-6)
    # class names from the label file, a Markdown report and two figures beside the JSON
    from videotag.data.labels import load_label_names

    names = load_label_names(demo.label_file, demo.num_classes)
    assert [r["name"] for r in result["per_class"]] == names
    markdown = (root / "eval.md").read_text()
    assert "## Per-class AP" in markdown and f"| {result['gap']:.4f} |" in markdown
    for png in ("eval_pr_curve.png", "eval_ap_histogram.png"):
        assert (root / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_eval_cli_compares_two_models_on_the_same_data(trained):
    demo, model_dir, root, _ = trained
    proc = _run("tools/eval.py", "--compare", str(model_dir), str(model_dir), "--top_k=5",
                "--threshold=0.2", f"--report={root / 'compare.json'}")
    report = json.loads((root / "compare.json").read_text())
    a, b = report["models"]
    assert a["gap"] == b["gap"] and a["top_k"] == 5 and a["threshold"] == 0.2
    header = next(line for line in proc.stdout.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "A", "B", "B", "-", "A"]
    assert any(line.startswith("GAP@5") and line.endswith("+0.0000")
               for line in proc.stdout.splitlines())
    assert (root / "compare.md").is_file() and (root / "compare_pr_curve.png").is_file()
    bad = _run("tools/eval.py", "--compare", str(model_dir), check=False)
    assert bad.returncode == 1 and "two model directories" in bad.stderr


SERVE_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.modules["videotag"] = None   # videotag cannot be imported here
    sys.modules["keras"] = None      # nor Keras: TensorFlow alone must do
    import numpy as np, tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    records = [r.numpy() for r in tf.data.TFRecordDataset(sys.argv[2]).take(8)]
    out = loaded.signatures["serving_default"](example_bytes=tf.constant(records))
    result = {k: v.numpy().tolist() for k, v in out.items() if k not in ("video_id", "class_names")}
    result["video_id"] = [v.decode() for v in out["video_id"].numpy()]
    result["class_names"] = [[n.decode() for n in row] for row in out["class_names"].numpy()]
    # a malformed record fails its request; the next valid request is still served
    try:
        loaded.signatures["serving_default"](example_bytes=tf.constant([records[0], b"garbage"]))
        result["malformed"] = "accepted"
    except tf.errors.InvalidArgumentError:
        result["malformed"] = "rejected"
    again = loaded.signatures["serving_default"](example_bytes=tf.constant(records[:2]))
    result["after_error"] = again["class_indexes"].numpy().tolist()
    print(json.dumps(result))
""")


@pytest.fixture(scope="module")
def exported(trained):
    demo, model_dir, root, _ = trained
    proc = _run("tools/export.py", f"--model_dir={model_dir}", f"--export_dir={root / 'exports'}")
    path = root / "exports" / "nextvlad" / "1"
    assert f"exported NEXTVLAD to {path}" in proc.stdout
    return path


def test_saved_model_serves_in_a_fresh_process_like_the_keras_model(trained, exported, tmp_path):
    demo, model_dir, _, _ = trained
    shard = sorted(Path(demo.root).glob("validate*.tfrecord"))[0]
    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, str(script), str(exported), str(shard)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    served = json.loads(proc.stdout.strip().splitlines()[-1])
    assert served["malformed"] == "rejected"
    assert served["after_error"] == served["class_indexes"][:2]

    from videotag.data import make_dataset, model_inputs
    from videotag.data.labels import load_label_names
    from videotag.training.trainer import load_trained

    cfg, model = load_trained(str(model_dir))
    batch = next(iter(make_dataset(cfg.data, str(shard), 8, training=False)))
    assert [v.decode() for v in batch["video_id"].numpy()] == served["video_id"]
    out = model(model_inputs(cfg.data, batch), training=False)
    scores, indexes = tf.math.top_k(out["tags"], k=20)
    np.testing.assert_allclose(served["predictions"], scores.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(served["class_indexes"], indexes.numpy())
    np.testing.assert_allclose(served["embedding"], out["embedding"].numpy(), rtol=1e-4, atol=1e-4)
    names = load_label_names(cfg.data.label_file, cfg.data.num_classes)
    assert served["class_names"][0] == [names[i] for i in served["class_indexes"][0]]


def test_saved_model_cli_shows_the_signatures(exported):
    cli = Path(sys.executable).with_name("saved_model_cli")
    proc = subprocess.run([str(cli), "show", "--all", "--dir", str(exported)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    serving = text.split("signature_def['serving_default']")[1]
    assert "inputs['example_bytes']" in serving and "DT_STRING" in serving
    for output, dtype, shape in [("class_indexes", "DT_INT32", "(-1, 20)"),
                                 ("predictions", "DT_FLOAT", "(-1, 20)"),
                                 ("class_names", "DT_STRING", "(-1, 20)"),
                                 ("embedding", "DT_FLOAT", "(-1, 32)"),
                                 ("video_id", "DT_STRING", "(-1)")]:
        block = serving.split(f"outputs['{output}']")[1].split("outputs[")[0]
        assert dtype in block and f"shape: {shape}" in block, (output, block)
    dense = text.split("signature_def['predict_dense']")[1].split("signature_def[")[0]
    assert "inputs['rgb']" in dense and "(-1, -1, 1024)" in dense and "DT_UINT8" in dense
    assert "inputs['num_frames']" in dense


def test_predict_from_model_dir_and_saved_model_agree(trained, exported, tmp_path):
    demo, model_dir, _, _ = trained
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    _run("tools/predict.py", f"--model_dir={model_dir}", f"--input_data_pattern={demo.eval_pattern}",
         f"--output_file={a}", "--top_k=5")
    _run("tools/predict.py", f"--saved_model={exported}", f"--input_data_pattern={demo.eval_pattern}",
         f"--output_file={b}", "--top_k=5")
    rows_a = {r[0]: r[1].split() for r in list(csv.reader(a.open()))[1:]}
    rows_b = {r[0]: r[1].split() for r in list(csv.reader(b.open()))[1:]}
    assert len(rows_a) == 64 and rows_a.keys() == rows_b.keys()
    for vid, pairs in rows_a.items():
        assert len(pairs) == 10  # 5 (class, score) pairs
        assert pairs[0::2] == rows_b[vid][0::2]
        np.testing.assert_allclose(np.float64(pairs[1::2]), np.float64(rows_b[vid][1::2]), atol=2e-6)

    js = tmp_path / "p.json"
    _run("tools/predict.py", f"--saved_model={exported}", f"--input_data_pattern={demo.eval_pattern}",
         f"--output_file={js}", "--format=json", "--top_k=3")
    entries = json.loads(js.read_text())
    assert len(entries) == 64
    first = entries[0]
    assert isinstance(first[0], str) and len(first) == 4
    assert set(first[1]) == {"class_name", "probability", "class_id"}
    assert first[1]["class_id"] == int(rows_a[first[0]][0])


def test_cli_errors_are_clear_and_lose_nothing(trained, tmp_path):
    demo, model_dir, _, _ = trained
    proc = _run("tools/eval.py", f"--model_dir={model_dir}",
                f"--eval_data_pattern={tmp_path}/nothing*.tfrecord", check=False)
    assert proc.returncode == 1
    assert "error: no files match the data pattern" in proc.stderr
    assert "Traceback" not in proc.stderr

    bad = write_file(tmp_path / "bad.tfrecord", [frame_record(b"x", labels=(99,))])
    out = tmp_path / "out.csv"
    proc = _run("tools/predict.py", f"--model_dir={model_dir}", f"--input_data_pattern={bad}",
                f"--output_file={out}", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "bad.tfrecord: record 0" in proc.stderr and "labels" in proc.stderr
    assert not out.exists() and not Path(f"{out}.tmp").exists()

    proc = _run("tools/train.py", "--model_name=NOPE", check=False)
    assert proc.returncode == 1 and "unknown model 'NOPE'" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = _run("tools/train.py", "--override=train.batch_size=abc", check=False)
    assert proc.returncode == 1 and "'train.batch_size' expects int" in proc.stderr


def _readme_rest_example():
    """(the Python that builds request.json, the answer JSON) of the README."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("Send records, base64-encoded, to the REST API:")[1]
    code = section.split("<<'EOF' > request.json\n")[1].split("\nEOF\n")[0]
    answer = section.split("```json\n")[1].split("```")[0]
    return code, answer


def test_readme_rest_request_and_answer_match_the_signature(trained, exported, tmp_path):
    from tests.rest import rest_predict

    demo, _, _, _ = trained
    code, answer = _readme_rest_example()
    shard = sorted(Path(demo.root).glob("validate*.tfrecord"))[0]
    assert '"data/demo_generated/validate0000.tfrecord"' in code
    proc = subprocess.run([sys.executable, "-c", code.replace(
        "data/demo_generated/validate0000.tfrecord", str(shard))], capture_output=True,
        text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    request = json.loads(proc.stdout)
    loaded = tf.saved_model.load(str(exported))
    signature = loaded.signatures[request["signature_name"]]
    assert set(request["instances"][0]) == set(signature.structured_input_signature[1])
    served = rest_predict(loaded, request)["predictions"]
    # the README's answer, with its "..." cuts removed, has the served keys and types
    shown = json.loads(answer.replace(", ...]", "]"))["predictions"]
    assert len(shown) == len(served) == 2
    for readme, real in zip(shown, served):
        assert set(readme) == set(real) == set(signature.structured_outputs)
        for key, value in readme.items():
            assert type(value) is type(real[key]), key
            if isinstance(value, list):
                assert len(value) == 3 and len(real[key]) >= 3
                assert all(type(v) is type(r) for v, r in zip(value, real[key])), key
        assert readme["video_id"].startswith("demo-validate-")
        assert real["predictions"] == sorted(real["predictions"], reverse=True)


def test_json_lines_embeddings_and_similar_videos_from_the_clis(trained, exported, tmp_path):
    demo, model_dir, _, _ = trained
    lines = tmp_path / "p.jsonl"
    _run("tools/predict.py", f"--saved_model={exported}", f"--input_data_pattern={demo.eval_pattern}",
         f"--output_file={lines}", "--format=jsonl", "--top_k=3", "--threshold=0.05")
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(rows) == 64 and set(rows[0]) == {"id", "tags"}
    assert all(len(r["tags"]) <= 3 and all(t["probability"] >= 0.05 for t in r["tags"])
               for r in rows)

    prefix = tmp_path / "emb" / "validate"
    proc = _run("tools/embed.py", f"--model_dir={model_dir}",
                f"--input_data_pattern={demo.eval_pattern}", f"--output={prefix}",
                "--format=npy,tfrecord")
    assert "embedded 64 videos (32 dimensions)" in proc.stderr
    vectors = np.load(f"{prefix}.npy")
    ids = Path(f"{prefix}.ids.txt").read_text().splitlines()
    assert vectors.shape == (64, 32) and sorted(ids) == sorted(r["id"] for r in rows)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)

    proc = _run("tools/similar.py", f"--embeddings={prefix}", f"--query_id={ids[5]}",
                "--top_k=4")
    table = [line.split("\t") for line in proc.stdout.strip().splitlines()]
    assert table[0] == ["query_id", "rank", "similar_id", "score"] and len(table) == 5
    scores = vectors @ vectors[5]
    scores[5] = -np.inf
    want = [ids[j] for j in np.argsort(-scores, kind="stable")[:4]]
    assert [row[2] for row in table[1:]] == want and all(row[0] == ids[5] for row in table[1:])

    out = tmp_path / "all.jsonl"
    _run("tools/similar.py", f"--embeddings={prefix}", "--all", "--top_k=70",
         "--format=jsonl", "--block_size=10", f"--output_file={out}")
    everything = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["id"] for e in everything] == ids
    assert all(len(e["similar"]) == 63 for e in everything)  # k > N - 1: all the others
