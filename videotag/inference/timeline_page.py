"""The timeline page: one self-contained HTML file for a set of segment predictions.

The page (`timeline.html` beside this file, filled in here) shows, per video, its
video-level tags and a timeline of its segment tags: one lane per tag, a block per
segment where the tag is among the segment's top tags (darker when more probable).
With the video file, the page plays it and lights up the tags of the segment being
played; clicking a tag jumps to its next segment (the video seeks there). It needs
no server and fetches nothing: its script, style and data are inside the file, and
the videos are linked by relative path (or embedded with `embed_videos`).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import urllib.parse
from importlib import resources
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from videotag.errors import DataError
from videotag.files import open_output

TEMPLATE = resources.files("videotag") / "inference" / "timeline.html"


def read_timeline(path: str) -> Iterator[dict]:
    """The entries of a timeline file (`videotag predict --segments --timeline_file`).

    Raises:
        DataError: the file is missing, or a line is not a timeline entry.
    """
    try:
        f = open(path, encoding="utf-8")
    except OSError as exc:
        raise DataError(f"timeline file not found: {path} ({exc.strerror})") from None
    with f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                _check_entry(entry)
            except (ValueError, KeyError, TypeError) as exc:
                raise DataError(f"{path}: line {lineno}: not a timeline entry ({exc})") from None
            yield entry


def _check_entry(entry: dict) -> None:
    """Raises ValueError/KeyError/TypeError unless `entry` has the timeline's fields."""
    if not isinstance(entry["id"], str):
        raise TypeError("'id' must be a string")
    for tag in entry["tags"] + [t for s in entry["segments"] for t in s["tags"]]:
        int(tag["id"]), str(tag["name"]), float(tag["probability"])
    for segment in entry["segments"]:
        if not 0 <= int(segment["start"]) < int(segment["end"]):
            raise ValueError(f"segment {segment['start']}-{segment['end']} is empty")
    float(entry["duration"])


def match_videos(ids: Sequence[str], videos: Sequence[str]) -> Dict[str, str]:
    """{entry id: video file} for the ids that name one of `videos` (folders, files
    or manifests): by the file's path (as `predict --videos` writes ids), or by its
    name or its name without extension (as extracted records' ids are)."""
    if not videos:
        return {}
    from videotag.extraction.inputs import list_videos

    items, _ = list_videos(list(videos), with_labels=False)
    by_key: Dict[str, str] = {}
    for item in items:
        path = Path(item.path)
        for key in (item.path, str(path.resolve()), path.name, path.stem, item.video_id):
            by_key.setdefault(key, item.path)
    return {i: by_key[i] for i in ids if i in by_key}


def _source(video: str, page_dir: str, embed: bool) -> str:
    """The `src` of a video on the page: a data URI, or its path relative to the page."""
    if embed:
        kind = mimetypes.guess_type(video)[0] or "video/mp4"
        return f"data:{kind};base64," + base64.b64encode(Path(video).read_bytes()).decode()
    relative = os.path.relpath(os.path.abspath(video), os.path.abspath(page_dir))
    return urllib.parse.quote(relative.replace(os.sep, "/"))


def page_html(entries: List[dict], title: str = "videotag timeline", summary: str = "",
              min_probability: float = 0.1, max_lanes: int = 8) -> str:
    """The page for timeline `entries` (each may carry `src`, its video's URL)."""
    data = {"videos": entries, "summary": summary, "min_probability": min_probability,
            "max_lanes": max_lanes}
    # "<" as \u003c: no "</script>" inside the data can end the script element
    text = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    template = TEMPLATE.read_text(encoding="utf-8")
    return template.replace("__TITLE__", _escape(title)).replace("__DATA__", text)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_timeline_page(timeline_file: str, output_file: str, videos: Sequence[str] = (),
                        embed_videos: bool = False, max_videos: int = 200,
                        min_probability: float = 0.1, max_lanes: int = 8,
                        title: Optional[str] = None) -> Tuple[int, int]:
    """Writes the page of a timeline file (the file appears only when complete).

    Args:
        timeline_file: the JSON Lines timeline (`videotag predict --segments`).
        output_file: the HTML page.
        videos: video files, folders or manifests to play on the page.
        embed_videos: put the videos inside the page (data URIs) instead of linking
            them by relative path (then the page can be moved alone).
        max_videos: the page shows the first this many videos.
        min_probability: segment tags below it are not drawn.
        max_lanes: lanes per video (its tags with the most probable segments).
        title: the page's title; default "videotag timeline: <timeline file name>".

    Returns:
        (videos on the page, videos with their video file).
    """
    entries, total = [], 0
    for entry in read_timeline(timeline_file):
        total += 1
        if len(entries) < max_videos:
            entries.append(entry)
    matched = match_videos([e["id"] for e in entries], videos)
    page_dir = os.path.dirname(os.path.abspath(output_file))
    for entry in entries:
        if entry["id"] in matched:
            entry["src"] = _source(matched[entry["id"]], page_dir, embed_videos)
    shown = f"{len(entries)} of {total} videos" if total > len(entries) else f"{total} videos"
    summary = (f"{shown} from {os.path.basename(timeline_file)}; click a tag to jump to its "
               "segments")
    html = page_html(entries, title or f"videotag timeline: {os.path.basename(timeline_file)}",
                     summary, min_probability, max_lanes)
    with open_output(output_file) as out:
        out.write(html)
    return len(entries), len(matched)
