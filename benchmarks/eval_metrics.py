"""GAP@20 + mAP + Hit@1 + PERR on 100,000 videos x 3862 classes: videotag's streaming
metrics against a straightforward implementation of the YT8M starter code's algorithm
(reference_metrics.py), on the same seeded random data, in the same run.

    python benchmarks/eval_metrics.py [--videos 100000 --classes 3862 --batch 1000]

Every side receives the same numpy batches [batch, classes] of float32 scores and bool
labels, one batch at a time (data generation is not timed). Two references (see
reference_metrics.py): `reference_heap` finds each video's top 20 with a Python heap
over all its classes (the algorithm as stated), `reference_numpy` preselects the
candidates with numpy first (as the starter code's argpartition does), a stronger
baseline. videotag's time is `StreamingEvaluator.add` on every batch plus `result()`,
which computes all of its metrics (also mAP over all classes, Hit@k, precision /
recall / F1 at 0.5); the references compute GAP@20, mAP, Hit@1 and PERR only.
`videotag_tf` times the path `tools/eval.py` takes on an accelerator: the batch summary
computed by TensorFlow (as inside the predict step; traced once before timing), brought
to the host and accumulated. `videotag_host` times its path on a CPU (no GPU or TPU
visible): the step's score tensor read on the host, summarized by NumPy
(`summarize_on_host`, with its NaN check) and accumulated. The line "tools/eval.py here"
names the one `tools/eval.py` takes on this machine.

Data: float32 sigmoid scores of normal logits, N(-6, 1.5) for negatives and N(1, 2) for
positives (ties occur, as with real float32 model scores); Poisson(3) labels per video
(so ~5% of videos have none) from a skewed class prior in which the last 1% of the
classes never occur (so mAP over classes with positives and over all classes differ).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
from reference_metrics import ReferenceMetrics  # noqa: E402

from videotag.evaluation import StreamingEvaluator  # noqa: E402

METRICS = ("gap", "map", "hit_at_1", "perr")


def class_prior(classes: int) -> np.ndarray:
    """Skewed (Zipf-like) label frequencies; the last 1% of the classes never occur."""
    prior = 1.0 / (np.arange(classes) + 20.0)
    prior[classes - classes // 100:] = 0.0
    return prior / prior.sum()


def make_batch(seed: int, index: int, batch: int, classes: int, labels_per_video: float,
               prior: np.ndarray):
    """Batch `index` of the data set: the same arrays for the same (seed, index).

    Scores look like a sigmoid head's: logits N(-6, 1.5) for negatives, N(1, 2) for
    the video's labels, float32.
    """
    rng = np.random.default_rng([seed, index])
    counts = rng.poisson(labels_per_video, batch)
    rows = np.repeat(np.arange(batch), counts)
    labels = np.zeros((batch, classes), dtype=bool)
    labels[rows, rng.choice(classes, size=rows.size, p=prior)] = True
    logits = rng.standard_normal((batch, classes), dtype=np.float32)
    logits *= np.float32(1.5)
    logits -= np.float32(6.0)
    logits[labels] = rng.normal(1.0, 2.0, int(labels.sum())).astype(np.float32)
    np.negative(logits, out=logits)
    np.exp(logits, out=logits)
    logits += np.float32(1.0)
    return np.reciprocal(logits, out=logits), labels


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--classes", type=int, default=3862)
    parser.add_argument("--batch", type=int, default=1000, help="videos per batch")
    parser.add_argument("--top_k", type=int, default=20)
    parser.add_argument("--labels_per_video", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no_tf", action="store_true", help="skip the TensorFlow path")
    args = parser.parse_args()

    prior = class_prior(args.classes)
    references = {
        "reference_heap": ReferenceMetrics(args.classes, args.top_k, preselect=False),
        "reference_numpy": ReferenceMetrics(args.classes, args.top_k, preselect=True),
    }
    evaluators = {"videotag": StreamingEvaluator(args.classes, args.top_k)}
    if not args.no_tf:
        import tensorflow as tf

        from videotag.evaluation.evaluator import (
            summarize_on_host,
            summarize_tags_tf,
            summary_on_device,
        )

        evaluators["videotag_tf"] = StreamingEvaluator(args.classes, args.top_k)
        evaluators["videotag_host"] = StreamingEvaluator(args.classes, args.top_k)
        summarize = tf.function(summarize_tags_tf)
        k, threshold = tf.constant(args.top_k), tf.constant(0.5, tf.float64)
        # One trace per evaluation run, before the first batch: not timed.
        warm = make_batch(args.seed, -1 % 2**32, 8, args.classes, args.labels_per_video, prior)
        summarize(tf.constant(warm[0]), tf.constant(warm[1], tf.float32), k, threshold)
    seconds = dict.fromkeys(list(references) + list(evaluators), 0.0)

    num_batches = -(-args.videos // args.batch)
    labels_total = 0
    for index in range(num_batches):
        size = min(args.batch, args.videos - index * args.batch)
        scores, labels = make_batch(args.seed, index, size, args.classes,
                                    args.labels_per_video, prior)
        labels_total += int(labels.sum())
        for name, ref in references.items():
            start = time.perf_counter()
            ref.add(scores, labels)
            seconds[name] += time.perf_counter() - start
        start = time.perf_counter()
        evaluators["videotag"].add(scores, labels)
        seconds["videotag"] += time.perf_counter() - start
        if not args.no_tf:
            # In an evaluation the scores and labels are already tensors: not timed.
            scores_t, labels_t = tf.constant(scores), tf.constant(labels, tf.float32)
            start = time.perf_counter()
            out = summarize(scores_t, labels_t, k, threshold)
            evaluators["videotag_tf"].add_summary({key: v.numpy() for key, v in out.items()})
            seconds["videotag_tf"] += time.perf_counter() - start
            start = time.perf_counter()
            evaluators["videotag_host"].add_summary(summarize_on_host(
                np.asarray(scores_t), np.asarray(labels_t), args.top_k, 0.5))
            seconds["videotag_host"] += time.perf_counter() - start
        if (index + 1) % 10 == 0:
            print(f"  {min(args.videos, (index + 1) * args.batch)} videos", file=sys.stderr)

    results = {}
    for name, acc in list(references.items()) + list(evaluators.items()):
        start = time.perf_counter()
        results[name] = acc.result()
        seconds[name] += time.perf_counter() - start

    base = results["reference_heap"]
    max_diff = {
        name: max(abs(result[m] - base[m]) for m in METRICS)
        for name, result in results.items() if name != "reference_heap"
    }
    ratios = {
        f"{name}/{ref}": round(seconds[name] / seconds[ref], 4)
        for name in evaluators for ref in references
    }
    ours = results["videotag"]
    out = {
        "videos": args.videos,
        "classes": args.classes,
        "top_k": args.top_k,
        "positive_labels": labels_total,
        "classes_with_positives": ours["num_classes_with_positives"],
        "values": {name: {m: r[m] for m in METRICS} for name, r in results.items()},
        "map_all_classes": ours["map_all_classes"],
        "max_abs_diff_vs_reference_heap": max_diff,
        "seconds": {name: round(v, 3) for name, v in seconds.items()},
        "time_ratios": ratios,
        "videotag_state_mb": round(evaluators["videotag"].memory_bytes() / 2**20, 1),
    }
    print(f"{args.videos} videos x {args.classes} classes, top {args.top_k}, "
          f"{labels_total} positive labels, {ours['num_classes_with_positives']} classes "
          "with positives")
    print(f"{'':16s} {'GAP':>10s} {'mAP':>10s} {'Hit@1':>10s} {'PERR':>10s} {'seconds':>9s}")
    for name, result in results.items():
        print(f"{name:16s} " + " ".join(f"{result[m]:10.6f}" for m in METRICS)
              + f" {seconds[name]:9.2f}")
    for name, diff in max_diff.items():
        print(f"max |{name} - reference_heap| over the four metrics: {diff:.2e}")
    for pair, ratio in ratios.items():
        print(f"time {pair}: {ratio:.4f}")
    if not args.no_tf:
        used = "videotag_tf" if summary_on_device() else "videotag_host"
        out["eval_path_here"] = used
        out["eval_path_vs_videotag"] = round(seconds[used] / seconds["videotag"], 4)
        print(f"tools/eval.py here: {used}, {seconds[used] / seconds['videotag']:.4f} of the "
              "NumPy summaries path (videotag)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
