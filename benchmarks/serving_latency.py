"""Serving latency and throughput of the exported demo NEXTVLAD, as TF Serving runs it:
the SavedModel loaded with `tf.saved_model.load` in fresh processes where only
TensorFlow is imported.

    python benchmarks/serving_latency.py [--model_dir runs/demo] [--calls 300 --batches 20]

The model is the demo config (`configs/nextvlad_demo.yaml`: K=32, G=8, hidden 512,
40 classes) with random weights, or a trained model directory with `--model_dir`
(speed does not depend on the weights). Requests are the demo validation records as
they are (1 to 360 frames, mostly 10-100; at most 300 are used).

Measured, each in a fresh process:
- the first request after loading, without and with the warm-up requests of the
  export replayed first (what TF Serving does before it serves a version);
- `serving_default` at batch 1: latency over `--calls` requests (median, p90), one
  record per request, cycling through the records;
- `serving_default` at batch 64: videos/s over `--batches` requests, of videos in
  file order, and of videos sorted by length (a request is padded to its longest
  video, so mixing lengths costs);
- the baseline, in the same process and the same rounds: `predict_dense` on the same
  videos already parsed, so the ratio is the cost of parsing records in the graph.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHILD = textwrap.dedent(r"""
    import json, sys, time
    sys.modules["videotag"] = None  # as in TF Serving: TensorFlow alone
    sys.modules["keras"] = None
    import numpy as np, tensorflow as tf

    args = json.loads(sys.argv[1])
    start = time.perf_counter()
    loaded = tf.saved_model.load(args["model"])
    load_s = time.perf_counter() - start
    serve, dense = loaded.signatures["serving_default"], loaded.signatures["predict_dense"]
    records = [r.numpy() for r in tf.data.TFRecordDataset(args["records"]).take(args["videos"])]

    def timed(fn, **inputs):
        start = time.perf_counter()
        out = fn(**inputs)
        _ = [v.numpy() for v in out.values()]
        return time.perf_counter() - start

    result = {"load_s": load_s}
    if args["warmup"]:
        warm = np.load(args["warmup"], allow_pickle=True)
        for i in range(int(warm["count"])):
            signature = str(warm[f"{i}.signature"])
            prefix = f"{i}.input."
            names = [k[len(prefix):] for k in warm.files if k.startswith(prefix)]
            loaded.signatures[signature](**{n: tf.constant(warm[f"{i}.input.{n}"]) for n in names})
        result["warmup_s"] = time.perf_counter() - start - load_s
    result["first_request_ms"] = 1000 * timed(serve, example_bytes=tf.constant(records[:1]))
    if args["steady"]:
        def parse(batch):
            _, lists, lengths = tf.io.parse_sequence_example(
                tf.constant(batch), sequence_features={
                    n: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
                    for n in ("rgb", "audio")})
            n = tf.minimum(tf.minimum(lengths["rgb"], lengths["audio"]), 300)
            steps = int(tf.reduce_max(n))
            return {"rgb": tf.io.decode_raw(lists["rgb"][:, :steps], tf.uint8, fixed_length=1024),
                    "audio": tf.io.decode_raw(lists["audio"][:, :steps], tf.uint8, fixed_length=128),
                    "num_frames": tf.cast(n, tf.int32)}

        b = args["batch_size"]
        frames = [min(len(tf.train.SequenceExample.FromString(r).feature_lists
                          .feature_list["rgb"].feature), 300) for r in records]
        by_length = [records[i] for i in np.argsort(frames, kind="stable")]
        ones = [[r] for r in records]
        batches = [records[i:i + b] for i in range(0, len(records) - b + 1, b)]
        sorted_batches = [by_length[i:i + b] for i in range(0, len(records) - b + 1, b)]
        dense_ones, dense_batches = [parse(x) for x in ones], [parse(x) for x in batches]
        for x, d in zip(ones[:3], dense_ones[:3]):  # both signatures traced and warm
            timed(serve, example_bytes=tf.constant(x)), timed(dense, **d)
        lat, lat_dense = [], []
        for i in range(args["calls"]):
            j = i % len(ones)
            lat.append(timed(serve, example_bytes=tf.constant(ones[j])))
            lat_dense.append(timed(dense, **dense_ones[j]))
        t, t_dense = 0.0, 0.0
        for i in range(args["batches"]):
            j = i % len(batches)
            t += timed(serve, example_bytes=tf.constant(batches[j]))
            t_dense += timed(dense, **dense_batches[j])
        t_sorted = sum(timed(serve, example_bytes=tf.constant(sorted_batches[i % len(sorted_batches)]))
                       for i in range(args["batches"]))
        result.update(
            throughput_sorted=args["batches"] * b / t_sorted,
            latency_ms={"median": 1000 * float(np.median(lat)),
                        "p90": 1000 * float(np.percentile(lat, 90))},
            latency_dense_ms={"median": 1000 * float(np.median(lat_dense)),
                              "p90": 1000 * float(np.percentile(lat_dense, 90))},
            throughput=args["batches"] * b / t, throughput_dense=args["batches"] * b / t_dense,
            mean_frames=float(np.mean(frames)))
    print(json.dumps(result))
""")


def _child(args):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], env=env,
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model_dir", default=None, help="trained model (default: random "
                        "weights of the demo config)")
    parser.add_argument("--calls", type=int, default=300, help="batch-1 requests timed")
    parser.add_argument("--batches", type=int, default=20, help="batch requests timed")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--videos", type=int, default=640, help="demo records used")
    args = parser.parse_args()

    import keras
    import numpy as np

    import videotag
    from videotag.data.demo import ensure_demo_data
    from videotag.data.sources import resolve_data
    from videotag.export import export_saved_model
    from videotag.export.tf_serving import read_warmup_file
    from videotag.training.trainer import load_trained

    if args.model_dir:
        cfg, model = load_trained(args.model_dir)
        source = f"trained model {args.model_dir}"
    else:
        cfg = resolve_data(videotag.config.load(str(REPO / "configs" / "nextvlad_demo.yaml")),
                           verbose=False)
        keras.utils.set_random_seed(0)
        model = videotag.build_model(cfg)
        source = "random weights of configs/nextvlad_demo.yaml"
    demo = ensure_demo_data(verbose=False)
    records = [str(p) for p in sorted(Path(demo.root).glob("validate*.tfrecord"))]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(export_saved_model(model, cfg, tmp, save_keras=False))
        warm = {"count": 0}
        for i, (_, signature, inputs) in enumerate(read_warmup_file(
                path / "assets.extra" / "tf_serving_warmup_requests")):
            warm[f"{i}.signature"] = signature
            warm.update({f"{i}.input.{k}": v for k, v in inputs.items()})
            warm["count"] = i + 1
        np.savez(Path(tmp) / "warmup.npz", **warm)
        common = {"model": str(path), "records": records, "videos": args.videos,
                  "calls": args.calls, "batches": args.batches, "batch_size": args.batch_size}
        cold = _child(dict(common, warmup=None, steady=False))
        warmed = _child(dict(common, warmup=str(Path(tmp) / "warmup.npz"), steady=True))

    lat, dense = warmed["latency_ms"], warmed["latency_dense_ms"]
    print(f"NEXTVLAD demo config ({source}); {os.cpu_count()} CPUs, {platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f}; records of {warmed['mean_frames']:.0f} "
          "frames on average")
    print("| measure | serving_default (records) | predict_dense (parsed, baseline) | ratio |")
    print("|---|---|---|---|")
    print(f"| batch 1 latency, median | {lat['median']:.1f} ms | {dense['median']:.1f} ms | "
          f"{lat['median'] / dense['median']:.2f} |")
    print(f"| batch 1 latency, p90 | {lat['p90']:.1f} ms | {dense['p90']:.1f} ms | "
          f"{lat['p90'] / dense['p90']:.2f} |")
    print(f"| batch {args.batch_size} throughput | {warmed['throughput']:.0f} videos/s | "
          f"{warmed['throughput_dense']:.0f} videos/s | "
          f"{warmed['throughput'] / warmed['throughput_dense']:.2f} |")
    print(f"| batch {args.batch_size} throughput, videos of similar length per request | "
          f"{warmed['throughput_sorted']:.0f} videos/s | | |")
    print(f"first request after loading: {cold['first_request_ms']:.0f} ms cold, "
          f"{warmed['first_request_ms']:.0f} ms after the warm-up requests "
          f"({warmed['warmup_s']:.1f} s; loading {cold['load_s']:.1f} s)")
    print(json.dumps({"source": source, "cold": cold, "warmed": warmed}))


if __name__ == "__main__":
    main()
