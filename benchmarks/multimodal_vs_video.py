"""What titles and the category task add, on the built-in demo data.

Trains, with the same seed and schedule (the demo configs: 8 epochs):
- NEXTVLAD, video only (configs/nextvlad_demo.yaml);
- MULTIMODAL, frames + title (configs/multimodal_demo.yaml);
- both again with tasks [tags, category] (multi-task: tags + the 8 demo categories),
  category loss weight 0.1, and MULTIMODAL once more with weight 1.0;
then prints the validation GAP@20, mAP and Hit@1 of the tags, and the category top-1
and top-5 accuracy of the multi-task runs, as a Markdown table.

    python benchmarks/multimodal_vs_video.py --out_dir=runs/mm_bench
    python benchmarks/multimodal_vs_video.py --runs=NEXTVLAD,MULTIMODAL --epochs=4
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# The category loss (softmax cross-entropy per video) is about ten times the tags loss
# (binary cross-entropy averaged over the classes): weight 0.1 balances them.
MULTI_TASK = ["model.head.tasks=[tags, category]", "model.head.category_weight=0.1"]
# name -> (config, overrides)
RUNS = {
    "NEXTVLAD": ("nextvlad_demo", []),
    "MULTIMODAL": ("multimodal_demo", []),
    "NEXTVLAD+category": ("nextvlad_demo", MULTI_TASK),
    "MULTIMODAL+category": ("multimodal_demo", MULTI_TASK),
    "MULTIMODAL+category@1.0": ("multimodal_demo", MULTI_TASK[:1] + [
        "model.head.category_weight=1.0"]),
}


def run(name: str, out_dir: Path, epochs: int | None) -> dict:
    from videotag import config as config_lib
    from videotag.evaluation.evaluator import category_head_accuracy
    from videotag.training import train
    from videotag.training.trainer import load_trained

    config, overrides = RUNS[name]
    overrides = list(overrides) + ["train.eval_before_training=false"]
    if epochs:
        overrides.append(f"train.epochs={epochs}")
    cfg = config_lib.load(config, overrides)
    model_dir = out_dir / name.lower().replace("+", "_").replace("@", "_")
    start = time.time()
    summary = train(cfg, str(model_dir), verbose=False)
    v = summary["validation"]
    row = {"run": name, "gap": v["gap"], "map": v["map"], "hit_at_1": v["hit_at_1"],
           "seconds": round(time.time() - start, 1)}
    if "category" in cfg.model.head.tasks:
        saved, model = load_trained(str(model_dir))
        row.update(category_head_accuracy(model, saved))
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
    out_dir = Path(args.out_dir or tempfile.mkdtemp(prefix="mm_bench_"))
    rows = [run(n, out_dir, args.epochs) for n in names]

    print("| run | GAP@20 | mAP | Hit@1 | category top-1 | category top-5 | seconds |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cat1 = f"{r['category_top1']:.4f}" if "category_top1" in r else "-"
        cat5 = f"{r['category_top5']:.4f}" if "category_top5" in r else "-"
        print(f"| {r['run']} | {r['gap']:.4f} | {r['map']:.4f} | {r['hit_at_1']:.4f} | {cat1} | "
              f"{cat5} | {r['seconds']} |")


if __name__ == "__main__":
    main()
