"""Evaluation reports people read: a text table, a JSON file, a Markdown file with the
per-class AP table, and two PNG figures (precision-recall curve, per-class AP
histogram). One model, or two side by side on the same data.

Files written for a JSON path `out/eval.json`:

    out/eval.json               metrics, per-class figures, a sampled PR curve
    out/eval.md                 the metrics table, the figures, the per-class table
    out/eval_pr_curve.png       precision-recall of the pooled top-k pairs
    out/eval_ap_histogram.png   histogram of per-class AP (classes with positives)

The files go through `videotag.files`: on any file system, each appears only when
complete.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from videotag import files
from videotag.evaluation.evaluator import Evaluation

PR_CURVE_POINTS = 200  # points of the precision-recall curve kept in the JSON file
PLOT_POINTS = 4000  # points drawn per curve


def metric_rows(result: Dict) -> List[Tuple[str, str]]:
    """(label, key) of the metrics present in `result`, in reading order."""
    k = result.get("top_k", 20)
    t = result.get("threshold", 0.5)
    rows = []
    if "gap" in result:
        with_pos = result.get("num_classes_with_positives")
        rows += [
            (f"GAP@{k}", "gap"),
            (f"mAP@{k} (classes with positives{f': {with_pos}' if with_pos is not None else ''})",
             "map"),
            (f"mAP@{k} (all classes)", "map_all_classes"),
            ("Hit@1", "hit_at_1"),
            (f"Hit@{k}", "hit_at_k"),
            ("PERR", "perr"),
        ]
        for name in ("precision", "recall", "F1"):
            for avg in ("micro", "macro"):
                rows.append((f"{name} @{t:g} ({avg})", f"{name.lower()}_{avg}"))
    if "category_top1" in result:
        rows += [("category top-1", "category_top1"), ("category top-5", "category_top5")]
    rows.append(("videos", "num_videos"))
    if "num_positives" in result:
        rows.append(("positive labels", "num_positives"))
    return rows


def _cell(result: Dict, key: str) -> str:
    value = result.get(key)
    if value is None:
        return "-"
    if key.startswith("num_"):
        return f"{int(value)}"
    return f"{value:.4f}"


def _diff_cell(a: Dict, b: Dict, key: str) -> str:
    if key not in a or key not in b or key.startswith("num_"):
        return ""
    return f"{b[key] - a[key]:+.4f}"


def _rows(results: Sequence[Dict]) -> List[Tuple[str, str]]:
    seen, rows = set(), []
    for result in results:
        for label, key in metric_rows(result):
            if key not in seen:
                seen.add(key)
                rows.append((label, key))
    return rows


def format_table(results: Sequence[Dict], names: Sequence[str]) -> str:
    """A plain-text table: one row per metric, one column per model (and B - A for two)."""
    header = ["metric", *names] + (["B - A"] if len(results) == 2 else [])
    lines = [header]
    for label, key in _rows(results):
        line = [label] + [_cell(r, key) for r in results]
        if len(results) == 2:
            line.append(_diff_cell(results[0], results[1], key))
        lines.append(line)
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = []
    for i, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(line[1:], widths[1:])]
        out.append("  ".join(cells).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def per_class_rows(evaluation: Evaluation, class_names: Sequence[str]) -> List[Dict]:
    """One dict per class: id, name, positives, AP, precision / recall / F1 and counts."""
    tags = evaluation.tags
    if tags is None:
        return []
    ap, positives = tags.per_class_ap()
    precision, recall, f1 = tags.per_class_prf()
    counts = tags.class_counts()
    return [
        {
            "class": c,
            "name": class_names[c] if c < len(class_names) else str(c),
            "positives": int(positives[c]),
            "ap": float(ap[c]),
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            "f1": float(f1[c]),
            "true_positives": int(counts["true_positives"][c]),
            "false_positives": int(counts["false_positives"][c]),
        }
        for c in range(tags.num_classes)
    ]


def _sample(n: int, points: int) -> np.ndarray:
    """At most `points` indices spread over range(n), the last one included."""
    if n <= points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, points).round().astype(np.int64))


def build_report(evaluation: Evaluation, class_names: Sequence[str], model_dir: str = "") -> Dict:
    """The JSON-ready report of one model: flat metrics, `per_class`, `pr_curve`."""
    report: Dict = {"model_dir": model_dir, "data_pattern": evaluation.pattern}
    report.update(evaluation.metrics)
    if evaluation.tags is not None:
        recall, precision = evaluation.tags.pr_curve()
        keep = _sample(recall.size, PR_CURVE_POINTS)
        report["pr_curve"] = {"recall": recall[keep].tolist(), "precision": precision[keep].tolist()}
        report["per_class"] = per_class_rows(evaluation, class_names)
    return report


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _plot_pr_curves(path: str, evaluations: Sequence[Evaluation], names: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    for evaluation, name in zip(evaluations, names):
        recall, precision = evaluation.tags.pr_curve()
        keep = _sample(recall.size, PLOT_POINTS)
        label = f"{name} (GAP@{evaluation.tags.top_k} {evaluation.metrics['gap']:.4f})"
        ax.plot(recall[keep], precision[keep], label=label, linewidth=1.5)
    k = evaluations[0].tags.top_k
    ax.set(xlabel="recall (of all positive labels)", ylabel="precision", xlim=(0, 1),
           ylim=(0, 1.02), title=f"Precision-recall of every video's top {k} classes, pooled")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    files.write_figure(fig, path)


def _plot_ap_histograms(path: str, evaluations: Sequence[Evaluation], names: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=100)
    bins = np.linspace(0, 1, 21)
    for i, (evaluation, name) in enumerate(zip(evaluations, names)):
        ap, positives = evaluation.tags.per_class_ap()
        ap = ap[positives > 0]
        label = f"{name} (mAP {evaluation.metrics['map']:.4f}, {ap.size} classes)"
        if len(evaluations) == 1:
            ax.hist(ap, bins=bins, color="tab:blue", edgecolor="white", label=label)
        else:
            ax.hist(ap, bins=bins, histtype="step", linewidth=2, label=label)
    ax.set(xlabel="average precision of a class", ylabel="classes", xlim=(0, 1),
           title="Per-class AP (classes with at least one positive)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    files.write_figure(fig, path)


def _markdown(evaluations: Sequence[Evaluation], names: Sequence[str], reports: Sequence[Dict],
              figures: Dict[str, str]) -> str:
    results = [e.metrics for e in evaluations]
    first = results[0]
    lines = ["# Evaluation report", ""]
    if len(evaluations) == 2:
        lines.append(f"A = `{reports[0]['model_dir']}`, B = `{reports[1]['model_dir']}`, "
                     "scored on the same data.")
        lines.append("")
    elif reports[0]["model_dir"]:
        lines += [f"Model: `{reports[0]['model_dir']}`", ""]
    lines.append(f"Data: `{evaluations[0].pattern}`, {int(first['num_videos'])} videos.")
    if "gap" in first:
        lines.append(
            f"GAP, mAP and Hit@k use every video's top {first['top_k']} classes; a tag counts "
            f"as predicted for precision / recall / F1 when its score is >= {first['threshold']:g}."
        )
    lines += ["", "## Metrics", ""]
    header = ["metric", *names] + (["B - A"] if len(results) == 2 else [])
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for label, key in _rows(results):
        cells = [label] + [_cell(r, key) for r in results]
        if len(results) == 2:
            cells.append(_diff_cell(results[0], results[1], key))
        lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    if not figures:
        return "\n".join(lines) + "\n"

    lines += [
        "", "## Precision-recall curve", "",
        f"![precision-recall curve]({figures['pr_curve']})", "",
        ("Every video's top-k (score, is positive) pairs pooled and sorted by score; recall "
         "divides by all positive labels, so it stops short of 1 when positives fall outside "
         "the top k. GAP is the area under this curve."),
        "", "## Per-class AP", "",
        f"![per-class AP histogram]({figures['ap_histogram']})", "",
    ]
    t = first["threshold"]
    rows = [r["per_class"] for r in reports]
    with_pos = [c for c in range(len(rows[0])) if any(r[c]["positives"] for r in rows)]
    with_pos.sort(key=lambda c: (-rows[0][c]["positives"], c))
    absent = len(rows[0]) - len(with_pos)
    lines.append(
        f"Classes with at least one positive in the data ({len(with_pos)}), most frequent "
        "first. 'videos' is the number of videos labelled with the class."
        + (f" {absent} classes without positives are left out (their AP is undefined; "
           "mAP over all classes counts them as 0)." if absent else "")
    )
    lines.append("")
    if len(reports) == 1:
        lines.append(f"| id | class | videos | AP | precision@{t:g} | recall@{t:g} | F1@{t:g} |")
        lines.append("|---:|---|---:|---:|---:|---:|---:|")
        for c in with_pos:
            r = rows[0][c]
            lines.append(
                f"| {c} | {_escape(r['name'])} | {r['positives']} | {r['ap']:.4f} | "
                f"{r['precision']:.4f} | {r['recall']:.4f} | {r['f1']:.4f} |"
            )
    else:
        a, b = names
        lines.append(f"| id | class | videos | AP {_escape(a)} | AP {_escape(b)} | B - A |")
        lines.append("|---:|---|---:|---:|---:|---:|")
        for c in with_pos:
            ra, rb = rows[0][c], rows[1][c]
            lines.append(
                f"| {c} | {_escape(ra['name'])} | {ra['positives']} | {ra['ap']:.4f} | "
                f"{rb['ap']:.4f} | {rb['ap'] - ra['ap']:+.4f} |"
            )
    return "\n".join(lines) + "\n"


def write_report(
    json_path: str,
    evaluations: Sequence[Evaluation],
    class_names: Sequence[str],
    model_dirs: Optional[Sequence[str]] = None,
    names: Optional[Sequence[str]] = None,
) -> Dict[str, str]:
    """Writes the JSON, Markdown and PNG files of one model or of two compared.

    Args:
        json_path: the JSON file; the others go beside it (same stem).
        evaluations: one `Evaluation`, or two on the same data.
        class_names: names of the tag classes (from the label file).
        model_dirs: where the models came from (shown in the report).
        names: column names of the models; default "model" or "A" / "B".

    Returns:
        {"json", "markdown", and when tags were scored "pr_curve", "ap_histogram"}: paths.
    """
    if len(evaluations) not in (1, 2):
        raise ValueError(f"a report holds one or two models, got {len(evaluations)}")
    model_dirs = list(model_dirs or [""] * len(evaluations))
    names = list(names or (["model"] if len(evaluations) == 1 else ["A", "B"]))
    stem = os.path.splitext(str(json_path))[0]
    reports = [build_report(e, class_names, d) for e, d in zip(evaluations, model_dirs)]
    paths = {"json": str(json_path), "markdown": f"{stem}.md"}
    figures: Dict[str, str] = {}
    if all(e.tags is not None for e in evaluations):
        paths["pr_curve"] = f"{stem}_pr_curve.png"
        paths["ap_histogram"] = f"{stem}_ap_histogram.png"
        _plot_pr_curves(paths["pr_curve"], evaluations, names)
        _plot_ap_histograms(paths["ap_histogram"], evaluations, names)
        figures = {k: os.path.basename(paths[k]) for k in ("pr_curve", "ap_histogram")}
    payload = reports[0] if len(reports) == 1 else {
        "data_pattern": evaluations[0].pattern, "names": names, "models": reports}
    files.write_text(paths["json"], json.dumps(payload, indent=1, ensure_ascii=False),
                     what="report")
    files.write_text(paths["markdown"], _markdown(evaluations, names, reports, figures),
                     what="report")
    return paths
