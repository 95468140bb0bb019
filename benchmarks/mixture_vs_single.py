"""MIX_NEXTVLAD (the NeXtVLAD authors' mixture with online distillation) against a
single NEXTVLAD, on the built-in demo data.

Trains, with the same seed and schedule (8 epochs of the demo configs):
- NEXTVLAD (configs/nextvlad_demo.yaml);
- MIX_NEXTVLAD (configs/mix_nextvlad_demo.yaml: 3 members, each that NEXTVLAD);
- MIX_NEXTVLAD_NO_DISTILLATION: the same without the distillation term
  (`model.cl_lambda=0`: the members' and the mixture's losses only);
then scores each on the validation data: the model's GAP@20, mAP and Hit@1 and, for
a mixture, the GAP@20 of each member alone (sigmoid of its own logits), with the
last epoch's distillation term and training time. Prints a Markdown table and the
load average.

    python benchmarks/mixture_vs_single.py --out_dir=runs/mix_bench
    python benchmarks/mixture_vs_single.py --runs=NEXTVLAD,MIX_NEXTVLAD --epochs=4
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# name -> (config, overrides)
RUNS = {
    "NEXTVLAD": ("nextvlad_demo", []),
    "MIX_NEXTVLAD": ("mix_nextvlad_demo", []),
    "MIX_NEXTVLAD_NO_DISTILLATION": ("mix_nextvlad_demo", ["model.cl_lambda=0"]),
}


def member_gaps(model_dir: Path) -> list:
    """GAP@20 of each member of a trained mixture on its validation data."""
    from videotag.data import make_dataset, model_inputs, schema
    from videotag.evaluation import gap
    from videotag.training.trainer import load_trained

    cfg, model = load_trained(str(model_dir))
    scores, labels = [], []
    for batch in make_dataset(cfg.data, cfg.data.eval_data_pattern, 256, training=False):
        out = model(model_inputs(cfg.data, batch), training=False)
        scores.append(1 / (1 + np.exp(-np.asarray(out["member_logits"]))))
        labels.append(batch[schema.LABELS_KEY].numpy())
    scores, labels = np.concatenate(scores), np.concatenate(labels)
    return [gap(scores[:, m], labels, top_k=20) for m in range(scores.shape[1])]


def run(name: str, out_dir: Path, epochs: int | None) -> dict:
    from videotag import config as config_lib
    from videotag.training import train

    config, overrides = RUNS[name]
    overrides = list(overrides) + ["train.eval_before_training=false"]
    if epochs:
        overrides.append(f"train.epochs={epochs}")
    cfg = config_lib.load(config, overrides)
    model_dir = out_dir / name.lower()
    start = time.time()
    summary = train(cfg, str(model_dir), verbose=False)
    v = summary["validation"]
    row = {"run": name, "gap": v["gap"], "map": v["map"], "hit_at_1": v["hit_at_1"],
           "seconds": round(time.time() - start, 1)}
    last = json.loads((model_dir / "metrics.json").read_text())["epochs"][-1]
    if "distillation_loss" in last:
        row["distillation_loss"] = last["distillation_loss"]
        row["members_loss"] = last["members_loss"]
        row["member_gaps"] = member_gaps(model_dir)
    print(json.dumps(row), file=sys.stderr, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", default=None, help="model directories (default: a temp dir)")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma list of {', '.join(RUNS)}")
    parser.add_argument("--epochs", type=int, default=None, help="default: the configs' (8)")
    args = parser.parse_args()
    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        parser.error(f"unknown run {unknown[0]} (valid: {', '.join(RUNS)})")
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="mix_bench_"))
    loads = [os.getloadavg()]
    rows = []
    for name in names:
        rows.append(run(name, out_dir, args.epochs))
        loads.append(os.getloadavg())

    print("| run | GAP@20 | mAP | Hit@1 | members' GAP@20 | last epoch's distillation term | "
          "training s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        members = (", ".join(f"{g:.4f}" for g in r["member_gaps"]) if "member_gaps" in r
                   else "-")
        distill = f"{r['distillation_loss']:.4f}" if "distillation_loss" in r else "-"
        print(f"| {r['run']} | {r['gap']:.4f} | {r['map']:.4f} | {r['hit_at_1']:.4f} | "
              f"{members} | {distill} | {r['seconds']} |")
    print(f"\nload average (1 min) before and after each run: "
          f"{', '.join(f'{one:.1f}' for one, _, _ in loads)}")


if __name__ == "__main__":
    main()
