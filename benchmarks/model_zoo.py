"""The model zoo on one table: parameters at the paper configuration, and the demo
validation GAP@20 and training speed of each model's demo configuration.

    python benchmarks/model_zoo.py                        # every registered model
    python benchmarks/model_zoo.py NETVLAD TRN --markdown zoo.md --json zoo.json

For each model: builds `configs/<name>.yaml` (the paper's configuration, 3862 classes,
rgb 1024 + audio 128) and counts its parameters (and states whether they are the
reference code's, see REFERENCE_PARAMETERS); trains `configs/<name>_demo.yaml` on
the built-in demo data with `videotag.training.trainer.train` into a temporary
folder; reports the final validation GAP@20 (1000 demo videos) and the training
examples/s: training videos seen / (run time - time spent scoring the validation
data). All models run one after the other on the same machine, so their speeds
compare with each other; the absolute figures are the machine's.
"""

import argparse
import gc
import json
import math
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

import videotag  # noqa: E402
from videotag.config import config_names  # noqa: E402
from videotag.data.demo import ensure_demo_data  # noqa: E402
from videotag.training.trainer import train  # noqa: E402

# The reference of each model, as the table cites it: the paper and the code each
# model's YAML names (repository, file, function).
REFERENCES = {
    "ATTENTION_CLUSTER": "Long et al. 2018 (arXiv 1711.09550); PaddlePaddle/models "
                         "PaddleCV/video/models/attention_cluster `AttentionCluster`",
    "ATTENTION_LSTM": "PaddleVideo paddlevideo/modeling/heads/attention_lstm_head.py "
                      "`AttentionLstmHead`",
    "DBOF": "Abu-El-Haija et al. 2016 (arXiv 1609.08675); google/youtube-8m "
            "frame_level_models.py `DbofModel`",
    "LOGISTIC": "Abu-El-Haija et al. 2016 (arXiv 1609.08675); google/youtube-8m "
                "video_level_models.py `LogisticModel`",
    "LSTM": "Abu-El-Haija et al. 2016 (arXiv 1609.08675); google/youtube-8m "
            "frame_level_models.py `LstmModel`",
    "MIX_NEXTVLAD": "Lin et al. 2018 (arXiv 1811.05014); linrongc/youtube-8m nextvlad.py "
                    "`MixNeXtVladModel`",
    "MOE": "Abu-El-Haija et al. 2016 (arXiv 1609.08675); google/youtube-8m "
           "video_level_models.py `MoeModel`",
    "NETFV": "Miech et al. 2017 (arXiv 1706.06905); antoine77340/Youtube-8M-WILLOW "
             "frame_level_models.py `NetFVModelLF`",
    "NETRVLAD": "Miech et al. 2017 (arXiv 1706.06905); antoine77340/Youtube-8M-WILLOW "
                "frame_level_models.py `NetVLADModelLF` (--lightvlad)",
    "NETVLAD": "Miech et al. 2017 (arXiv 1706.06905); antoine77340/Youtube-8M-WILLOW "
               "frame_level_models.py `NetVLADModelLF`",
    "NEXTVLAD": "Lin et al. 2018 (arXiv 1811.05014); linrongc/youtube-8m nextvlad.py "
                "`NeXtVLADModel`",
    "SOFTDBOF": "Miech et al. 2017 (arXiv 1706.06905); antoine77340/Youtube-8M-WILLOW "
                "frame_level_models.py `GatedDbofModelLF`",
    "TRN": "Zhou et al. 2018 (arXiv 1711.08496); zhoubolei/TRN-pytorch TRNmodule.py "
           "`RelationModuleMultiScale`",
    "MULTIMODAL": "a composition after seed 000's code (stoneyezhenxu/"
                  "Multimodal_Video_Classification src/video_model.py)",
}

# Whether the paper configuration has the reference code's parameter count, or the
# difference its YAML states (tests/test_reference_*.py, test_video_level.py and
# test_mix_nextvlad.py assert each).
REFERENCE_PARAMETERS = {
    "ATTENTION_CLUSTER": "yes",
    "ATTENTION_LSTM": "-16,384 (one LSTM bias where Paddle has two)",
    "DBOF": "yes",
    "LOGISTIC": "yes",
    "LSTM": "yes",
    "MIX_NEXTVLAD": "yes",
    "MOE": "yes",
    "NETFV": "yes",
    "NETRVLAD": "yes",
    "NETVLAD": "yes",
    "NEXTVLAD": "yes",
    "SOFTDBOF": "yes",
    "TRN": "-23,172 (one class bias where the reference has one per scale)",
    "MULTIMODAL": "no reference reproduced",
}


def reference(name):
    """The citation of `name`: the table above, else its module's first docstring line."""
    if name in REFERENCES:
        return REFERENCES[name]
    from videotag.registry import model_config_class

    doc = sys.modules[model_config_class(name).__module__].__doc__ or ""
    return doc.strip().splitlines()[0] if doc.strip() else "-"


def paper_parameters(name):
    """Parameters of the model built from `configs/<name>.yaml`, counted from its
    weights' shapes (built in a `keras.StatelessScope` that does not initialise its
    variables, so none is allocated, and the session cleared after; the
    input normalisation's eigenvalues are constants, not weights, so the count does
    not need their file)."""
    cfg = videotag.config.load(name.lower(), ["model.input.normalization=none"])
    with keras.StatelessScope(initialize_variables=False):
        model = videotag.build_model(cfg)
    count = sum(math.prod(w.shape) for w in model.weights)
    del model
    keras.backend.clear_session()
    gc.collect()
    return count


def demo_run(name, num_train):
    """Trains `configs/<name>_demo.yaml` on the demo data; returns its figures."""
    demo_config = f"{name.lower()}_demo"
    if demo_config not in config_names():
        return {"demo_gap": None, "examples_per_s": None, "note": f"no {demo_config}.yaml"}
    cfg = videotag.config.load(demo_config)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.time()
        summary = train(cfg, os.path.join(tmp, "model"), verbose=False)
        wall = time.time() - start
        with open(os.path.join(tmp, "model", "metrics.json")) as f:
            epochs = json.load(f)["epochs"]
    scoring = sum(e["validation"].get("seconds", 0.0) for e in epochs if "validation" in e)
    scoring += summary.get("untrained_validation", {}).get("seconds", 0.0)
    examples = summary["epochs"] * (cfg.train.steps_per_epoch * cfg.train.batch_size
                                    if cfg.train.steps_per_epoch else num_train)
    keras.backend.clear_session()
    gc.collect()
    return {
        "demo_gap": round(summary["validation"]["gap"], 4),
        "untrained_gap": round(summary["untrained_validation"]["gap"], 4)
        if "untrained_validation" in summary else None,
        "epochs": summary["epochs"],
        "train_seconds": round(wall - scoring, 1),
        "examples_per_s": round(examples / max(wall - scoring, 1e-9), 1),
    }


def markdown(rows):
    """The README table of `rows`."""
    lines = ["| model | reference (paper; code) | parameters (paper config) "
             "| reference parameters = ours | demo GAP@20 | demo training examples/s |",
             "|---|---|---:|---|---:|---:|"]
    for r in rows:
        gap = f"{r['demo_gap']:.4f}" if r.get("demo_gap") is not None else "-"
        speed = f"{r['examples_per_s']:,.0f}" if r.get("examples_per_s") is not None else "-"
        same = REFERENCE_PARAMETERS.get(r["model"], "-")
        lines.append(f"| `{r['model']}` | {r['reference']} | {r['parameters'] / 1e6:,.1f} M "
                     f"| {same} | {gap} | {speed} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model names (default: all registered)")
    parser.add_argument("--markdown", help="write the Markdown table here")
    parser.add_argument("--json", help="write the figures as JSON here")
    parser.add_argument("--no_train", action="store_true", help="parameters only")
    args = parser.parse_args()

    names = [n.upper() for n in args.models] or videotag.list_models()
    unknown = sorted(set(names) - set(videotag.list_models()))
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)} "
                     f"(valid: {', '.join(videotag.list_models())})")
    num_train = ensure_demo_data().num_train
    rows = []
    for name in names:
        row = {"model": name, "reference": reference(name),
               "parameters": paper_parameters(name)}
        print(f"{name}: {row['parameters']:,} parameters at the paper config", file=sys.stderr)
        if not args.no_train:
            keras.utils.set_random_seed(0)
            row.update(demo_run(name, num_train))
            print(f"{name}: demo GAP@20 {row['demo_gap']}, {row['examples_per_s']} examples/s "
                  f"({row.get('train_seconds')} s of training)", file=sys.stderr, flush=True)
        rows.append(row)
        if args.json:  # written as it goes: a long run keeps what it measured
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=2)
    table = markdown(rows)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table)
    print(table)


if __name__ == "__main__":
    main()
