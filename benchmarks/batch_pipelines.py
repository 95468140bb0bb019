"""The Beam pipelines (DirectRunner, 2 worker processes) against the single-process
tools on the same inputs: the same outputs, and the throughput ratio.

    python benchmarks/batch_pipelines.py [--videos 8] [--records 0] [--skip extract]

Each command runs as a user runs it (`tools/<name>.py` in a fresh process, start-up
included in its time):
- extract: `tools/extract_features.py` vs `tools/batch_extract.py` on
  `--videos` videos of `make_demo_videos` (default settings: InceptionV3 at 299 and
  VGGish, random weights: the speed is that of trained ones), with one PCA fitted
  beforehand on the same videos (not timed); the records must hold the same ids,
  labels and quantized frames;
- predict: `tools/predict.py --format=jsonl` vs `tools/batch_predict.py` on the demo
  records (`--records`: the first N validation records, 0: all) with the demo NEXTVLAD
  config's export (random weights); every line's ids equal, scores equal to 1e-6;
- embed: `tools/embed.py --format=tfrecord` vs `tools/batch_embed.py`, the same
  export and records; ids equal, embeddings equal to 1e-6.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def timed(args, what):
    """Seconds of `python <args>` (fails loudly)."""
    began = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed:\n{proc.stderr[-3000:]}")
    return seconds


def row(name, count, unit, single, batch, check):
    print(f"| {name} | {count} {unit} | {single:.1f} s ({count / single:.2f}/s) | "
          f"{batch:.1f} s ({count / batch:.2f}/s) | {single / batch:.2f} | {check} |",
          flush=True)


def frames_of(path_glob):
    import tensorflow as tf

    out = {}
    for raw in tf.data.TFRecordDataset(sorted(glob.glob(path_glob))):
        ex = tf.train.SequenceExample.FromString(raw.numpy())
        video_id = ex.context.feature["id"].bytes_list.value[0].decode()
        out[video_id] = (list(ex.context.feature["labels"].int64_list.value),
                         {k: [f.bytes_list.value[0] for f in v.feature]
                          for k, v in ex.feature_lists.feature_list.items()})
    return out


def bench_extract(tmp, args):
    from videotag.extraction.synthetic import make_demo_videos

    manifest = make_demo_videos(tmp / "videos", num_videos=args.videos)
    common = [f"--input={manifest}", f"--label_file={tmp / 'videos' / 'labels.txt'}",
              "--weights=random", "--audio_weights=random", f"--pca_dir={tmp / 'pca'}"]
    timed(["tools/extract_features.py", *common, "--fit_pca", "--noprogress"], "fit_pca")
    single = timed(["tools/extract_features.py", *common, f"--output_dir={tmp / 'one'}",
                    "--noprogress"], "extract")
    batch = timed(["tools/batch_extract.py", *common, f"--output_dir={tmp / 'many'}",
                   *WORKERS], "batch-extract")
    one, many = frames_of(str(tmp / "one" / "*.tfrecord")), frames_of(
        str(tmp / "many" / "*.tfrecord"))
    assert one == many and len(one) == args.videos, (sorted(one), sorted(many))
    row("extract", args.videos, "videos", single, batch, "records identical")


def demo_export(tmp, args):
    import keras

    import videotag
    from videotag.data.demo import ensure_demo_data
    from videotag.data.sources import resolve_data
    from videotag.export import export_saved_model

    cfg = resolve_data(videotag.config.load(str(REPO / "configs" / "nextvlad_demo.yaml")),
                       verbose=False)
    keras.utils.set_random_seed(0)
    exported = export_saved_model(videotag.build_model(cfg), cfg, str(tmp / "exports"),
                                  save_keras=False)
    records = sorted(glob.glob(str(Path(ensure_demo_data(verbose=False).root)
                                   / "validate*.tfrecord")))
    if args.records:  # the first N records, in shards of 256
        import tensorflow as tf

        raw = [r.numpy() for r in tf.data.TFRecordDataset(records).take(args.records)]
        records = []
        for s in range(0, len(raw), 256):
            records.append(str(tmp / f"records-{s // 256:03d}.tfrecord"))
            with tf.io.TFRecordWriter(records[-1]) as w:
                for r in raw[s:s + 256]:
                    w.write(r)
    return str(exported), ",".join(records)


def bench_predict(tmp, exported, records):
    single = timed(["tools/predict.py", f"--saved_model={exported}",
                    f"--input_data_pattern={records}", "--format=jsonl",
                    f"--output_file={tmp / 'pred.jsonl'}", "--progress_seconds=0"], "predict")
    batch = timed(["tools/batch_predict.py", f"--saved_model={exported}",
                   f"--input_data_pattern={records}", f"--output_prefix={tmp / 'bp'}",
                   *WORKERS], "batch-predict")
    want = {json.loads(x)["id"]: json.loads(x) for x in open(tmp / "pred.jsonl")}
    got = {}
    for path in sorted(glob.glob(str(tmp / "bp-*.jsonl"))):
        got.update({json.loads(x)["id"]: json.loads(x) for x in open(path)})
    assert sorted(got) == sorted(want)
    worst = 0.0
    for video_id, line in want.items():
        assert [t["id"] for t in got[video_id]["tags"]] == [t["id"] for t in line["tags"]]
        worst = max([worst] + [abs(a["probability"] - b["probability"])
                               for a, b in zip(got[video_id]["tags"], line["tags"])])
    assert worst <= 1e-6, worst
    row("predict", len(want), "videos", single, batch,
        f"ids equal, largest score difference {worst:.1e}")


def bench_embed(tmp, exported, records):
    from videotag.retrieval.vectors import read_shards

    single = timed(["tools/embed.py", f"--saved_model={exported}",
                    f"--input_data_pattern={records}", f"--output={tmp / 'emb'}",
                    "--format=tfrecord", "--progress_seconds=0"], "embed")
    batch = timed(["tools/batch_embed.py", f"--saved_model={exported}",
                   f"--input_data_pattern={records}", f"--output_prefix={tmp / 'be'}",
                   *WORKERS], "batch-embed")
    want_ids, want = read_shards([str(tmp / "emb.tfrecord")])
    got_ids, got = read_shards(sorted(glob.glob(str(tmp / "be-*-of-*.tfrecord"))))
    assert sorted(got_ids) == sorted(want_ids)
    order = [got_ids.index(v) for v in want_ids]
    worst = float(np.max(np.abs(got[order] - want)))
    assert worst <= 1e-6, worst
    row("embed", len(want_ids), "videos", single, batch,
        f"ids equal, largest difference {worst:.1e}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--records", type=int, default=0)
    parser.add_argument("--skip", nargs="*", default=[], choices=["extract", "predict", "embed"])
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}")
    print("| pipeline | input | single process | Beam, DirectRunner, 2 workers | "
          "throughput ratio (Beam / single) | outputs |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        if "extract" not in args.skip:
            bench_extract(tmp, args)
        if {"predict", "embed"} - set(args.skip):
            exported, records = demo_export(tmp, args)
            if "predict" not in args.skip:
                bench_predict(tmp, exported, records)
            if "embed" not in args.skip:
                bench_embed(tmp, exported, records)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
