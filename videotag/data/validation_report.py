"""What `videotag validate-data` prints and writes: a text report, a JSON file and a PNG
of the histograms (frames per video, labels per video, videos per class).

Files written for a JSON path `out/validation.json` (through `videotag.files`):

    out/validation.json             every count, the layout, the per-class counts
    out/validation_histograms.png   the three histograms
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

from videotag import files
from videotag.data.validation import Validation

# Frame-count bins of the text report: (low, high) inclusive, high None: no bound.
FRAME_BINS = ((1, 1), (2, 10), (11, 50), (51, 100), (101, 200), (201, 300), (301, None))
SHOWN_CLASSES = 5


def frame_histogram(frames: np.ndarray) -> List[Tuple[str, int]]:
    """(bin, count) of frames per video over `FRAME_BINS`."""
    out = []
    for low, high in FRAME_BINS:
        inside = (frames >= low) & (frames <= (high if high is not None else np.inf))
        out.append((f"{low}" if low == high else f"{low}-{high}" if high else f">{low - 1}",
                    int(inside.sum())))
    return out


def labels_histogram(labels: np.ndarray) -> List[Tuple[int, int]]:
    """(labels per video, videos) for every count that occurs."""
    counts = np.bincount(labels) if labels.size else np.zeros([0], np.int64)
    return [(n, int(c)) for n, c in enumerate(counts) if c]


def _layout_line(result: Validation) -> str:
    layout = result.layout
    if not layout:
        return "layout: no record to read"
    context, lists = layout["context"], layout["lists"]
    id_keys = [k for k in (result.config["id_key"], "id", "video_id") if k in context]
    if lists:
        kind = "frame-level (SequenceExample)"
        features = ", ".join(
            f"{name} ({held['kind']}, {held['first_bytes'] if held['kind'] == 'bytes' else held['values']}"
            f"{' bytes' if held['kind'] == 'bytes' else ' values'} per frame)"
            for name, held in lists.items())
    else:
        kind = "video-level (Example)"
        features = ", ".join(f"{name} ({held['values']} {held['kind']})"
                             for name, held in context.items() if held["kind"] == "float")
    return (f"layout of the first record: {kind}; id key {id_keys[0] if id_keys else 'none'}; "
            f"features: {features or 'none'}; title: "
            f"{'yes' if result.config['title_key'] in context else 'no'}; category: "
            f"{'yes' if result.config['category_key'] in context else 'no'}")


def _share(n: int, total: int) -> str:
    return f"{n} ({100.0 * n / total:.1f}%)" if total else str(n)


def format_validation(result: Validation) -> str:
    """The report for people: counts, problems with examples, histograms."""
    lines = [f"validated {result.records} records in {len(result.files)} shard(s) in "
             f"{result.seconds:.1f} s ({result.rate:.0f} videos/s): {result.good} good, "
             f"{result.bad} bad" + (f", {len(result.corrupt_shards)} corrupt shard(s)"
                                    if result.corrupt_shards else ""),
             _layout_line(result)]
    lines += [f"  differs from the config: {note}" for note in result.notes]
    if result.reasons:
        lines.append("bad records by reason:")
        for reason, count in result.reasons.items():
            lines.append(f"  {reason}: {count}")
            lines += [f"    {message}" for message in result.examples.get(reason, [])]
    if result.corrupt_shards:
        lines.append("corrupt or truncated shards (nothing after the damage can be read):")
        lines += [f"  {shard}: unreadable after record {count - 1}" if count else
                  f"  {shard}: unreadable from its first record"
                  for shard, count in result.corrupt_shards]
    if result.empty_shards:
        lines.append(f"empty shards: {len(result.empty_shards)} (e.g. {result.empty_shards[0]})")
    if result.good:
        frames = result.frames
        if frames.size:
            lines.append(f"frames per video: min {frames.min()}, median {int(np.median(frames))}, "
                         f"max {frames.max()}; " + ", ".join(
                             f"{b}: {c}" for b, c in frame_histogram(frames)))
            kept = int((frames > result.config["max_frames"]).sum())
            if kept:
                lines.append(f"  {kept} video(s) longer than data.max_frames "
                             f"({result.config['max_frames']}): a run keeps their first frames")
        lines.append("labels per video: " + ", ".join(
            f"{n}: {c}" for n, c in labels_histogram(result.labels_per_video)))
        lines.append(_class_line(result))
        lines.append(f"titles: {_share(result.titles, result.records)}; categories: "
                     f"{_share(result.categories, result.records)}")
    lines.append("result: " + ("every record is good" if result.ok else
                               "no good record" if not result.good else "problems found"))
    return "\n".join(lines)


def _class_line(result: Validation) -> str:
    counts, names = result.class_counts, result.class_names
    order = np.argsort(-counts, kind="stable")
    seen = int((counts > 0).sum())
    source = (f"data.label_file {result.config['label_file']}" if result.config["label_file"]
              else "no label file")
    line = (f"label frequencies ({len(counts)} classes, {source}): {seen} with videos, "
            f"{len(counts) - seen} without")
    shown = ", ".join(f"{names[c]} {counts[c]}" for c in order[:SHOWN_CLASSES])
    line += f"; most frequent: {shown}"
    rare = [c for c in order[::-1] if counts[c] > 0][:SHOWN_CLASSES]
    if rare:
        line += "; least frequent: " + ", ".join(f"{names[c]} {counts[c]}" for c in rare)
    missing = [names[c] for c in range(len(counts)) if counts[c] == 0]
    if missing:
        line += "; without videos: " + ", ".join(missing[:SHOWN_CLASSES]) + (
            " ..." if len(missing) > SHOWN_CLASSES else "")
    return line


def validation_dict(result: Validation) -> Dict:
    """The JSON-ready report: every count, the layout and the per-class counts."""
    return {
        "pattern": result.pattern, "ok": result.ok, "files": len(result.files),
        "records": result.records, "good": result.good, "bad": result.bad,
        "seconds": round(result.seconds, 3), "videos_per_second": round(result.rate, 1),
        "bad_by_reason": result.reasons, "examples": result.examples,
        "corrupt_shards": [{"file": f, "records_read": n} for f, n in result.corrupt_shards],
        "empty_shards": result.empty_shards, "layout": result.layout, "notes": result.notes,
        "frames_histogram": dict(frame_histogram(result.frames)),
        "labels_per_video": {str(n): c for n, c in labels_histogram(result.labels_per_video)},
        "classes": [{"class": c, "name": n, "videos": int(v)}
                    for c, (n, v) in enumerate(zip(result.class_names, result.class_counts))],
        "titles": result.titles, "categories": result.categories, "config": result.config,
    }


def plot_histograms(result: Validation, path: str) -> None:
    """The PNG of the three histograms (frames, labels per video, videos per class)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), dpi=100)
    frames = result.frames
    if frames.size:
        axes[0].hist(frames, bins=min(50, max(1, int(frames.max()))), color="tab:blue")
    axes[0].set(title="frames per video", xlabel="frames", ylabel="videos")
    hist = labels_histogram(result.labels_per_video)
    axes[1].bar([n for n, _ in hist], [c for _, c in hist], color="tab:green")
    axes[1].set(title="labels per video", xlabel="labels", ylabel="videos")
    counts = np.sort(result.class_counts)[::-1]
    axes[2].bar(np.arange(counts.size), np.maximum(counts, 0.5), width=1.0, color="tab:orange")
    axes[2].set(title="videos per class (most frequent first)", xlabel="classes by rank",
                ylabel="videos", yscale="log")
    fig.suptitle(f"{result.pattern}: {result.good} good records of {result.records}")
    fig.tight_layout()
    files.write_figure(fig, path, "histograms")


def write_validation(result: Validation, json_path: str) -> Sequence[str]:
    """Writes `<json_path>` and `<stem>_histograms.png`; returns their paths."""
    png = f"{os.path.splitext(str(json_path))[0]}_histograms.png"
    plot_histograms(result, png)
    files.write_text(str(json_path), json.dumps(validation_dict(result), indent=1,
                                                ensure_ascii=False), what="report")
    return [str(json_path), png]
