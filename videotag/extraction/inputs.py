"""Which videos to extract: folders, video files and manifests.

An input is
- a folder: every file in it (not in sub-folders) with a video extension
  (`decode.VIDEO_EXTENSIONS`), sorted by name; other files are ignored and counted;
- a glob (`videos/*.mp4`, `gs://bucket/videos/*`): the matching files with a video
  extension, sorted; other matches are ignored and counted;
- a video file (by extension);
- any other file: a manifest, one video per line, `path<TAB>title<TAB>labels`:
  title and labels are optional (an empty title writes no `title` key, empty labels
  an empty `labels` list), labels are comma-separated class ids (integers) or
  class names of the label file; relative paths are relative to the manifest's folder;
  empty lines and lines starting with `#` are skipped. Every path of a manifest is
  tried as a video, whatever its extension.

A video's id is its file name without the extension; two videos with the same id
are an error (the records would collide). Paths may be on any `tf.io.gfile` file
system (`gs://...`); the batch pipeline copies such a video to its worker to decode it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from videotag.errors import DataError
from videotag.extraction.decode import VIDEO_EXTENSIONS


@dataclass
class VideoItem:
    """One video to extract: file, record id, title (None: no title) and class ids."""

    path: str
    video_id: str
    title: Optional[str] = None
    labels: List[int] = field(default_factory=list)


class LabelResolver:
    """Turns manifest labels (class ids or names) into class ids."""

    def __init__(self, label_file: str = ""):
        self.label_file = label_file
        self.names: Dict[str, int] = {}
        self.num_classes: Optional[int] = None
        if label_file:
            from videotag.data.labels import count_classes, load_label_names

            self.num_classes = count_classes(label_file)
            names = load_label_names(label_file, self.num_classes)
            self.names = {name: i for i, name in enumerate(names)}

    def __call__(self, text: str, where: str) -> List[int]:
        ids = []
        for label in (part.strip() for part in text.split(",")):
            if not label:
                continue
            if label.lstrip("-").isdigit():
                value = int(label)
                if value < 0 or (self.num_classes is not None and value >= self.num_classes):
                    bound = f"[0, {self.num_classes})" if self.num_classes else ">= 0"
                    raise DataError(f"{where}: label id {value} is not in {bound}")
            elif label in self.names:
                value = self.names[label]
            elif not self.label_file:
                raise DataError(f"{where}: label '{label}' is a name but no label file is "
                                "given (extraction key 'label_file' or --label_file)")
            else:
                raise DataError(f"{where}: label '{label}' is not a class of {self.label_file}")
            ids.append(value)
        return sorted(set(ids))


def is_video_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def _join(folder: str, name: str) -> str:
    """`folder/name`: a local path as pathlib writes it, a URL (gs://...) as it is."""
    if "://" in folder:
        return f"{folder.rstrip('/')}/{name}"
    return str(Path(folder) / name)


def _is_absolute(path: str) -> bool:
    return "://" in path or Path(path).is_absolute()


def read_manifest(path: str, labels: Optional[LabelResolver]) -> List[VideoItem]:
    """Videos of a manifest file (see the module docstring); labels None: ignored.

    Raises:
        DataError: unreadable file, or a bad line, naming the file and line.
    """
    import tensorflow as tf

    base = path[:path.rstrip("/").rindex("/")] if "/" in path else "."
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            lines = f.read().decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text manifest (nor a file with a video "
                        f"extension: {', '.join(VIDEO_EXTENSIONS)})") from None
    items = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) > 3:
            raise DataError(f"{path}: line {number}: expected 'path<TAB>title<TAB>labels', "
                            f"got {len(parts)} tab-separated fields")
        video = parts[0].strip()
        video = video if _is_absolute(video) else _join(base, video)
        title = parts[1].strip() if len(parts) > 1 and parts[1].strip() else None
        ids = labels(parts[2], f"{path}: line {number}") if labels and len(parts) > 2 else []
        items.append(VideoItem(video, Path(video).stem, title, ids))
    return items


def _videos_of(paths: Sequence[str], items: List[VideoItem], ignored: List[str]) -> None:
    """Adds the files of `paths` with a video extension to `items`, the others (not
    hidden, not folders) to `ignored`."""
    import tensorflow as tf

    for path in sorted(paths):
        if tf.io.gfile.isdir(path):
            continue
        if is_video_file(path):
            items.append(VideoItem(path, Path(path).stem))
        elif not Path(path).name.startswith("."):
            ignored.append(path)


def list_videos(inputs: Sequence[str], label_file: str = "",
                with_labels: bool = True) -> Tuple[List[VideoItem], List[str]]:
    """The videos named by `inputs` (folders, globs, video files, manifests), in order.

    With `with_labels` False the manifests' labels are ignored (for prediction).

    Returns:
        (videos, ignored): the videos to extract, and the files of input folders and
        globs left out for their extension.

    Raises:
        DataError: an input does not exist (a glob matches nothing), a manifest line
            is bad, or two videos share an id.
    """
    import tensorflow as tf

    labels = LabelResolver(label_file) if with_labels else None
    items: List[VideoItem] = []
    ignored: List[str] = []
    if not inputs:
        raise DataError("no input videos given")
    for entry in inputs:
        if tf.io.gfile.isdir(entry):
            folder = entry.rstrip("/") if "://" in entry else entry
            names = [n.rstrip("/") for n in tf.io.gfile.listdir(entry)]
            _videos_of([_join(folder, n) for n in names], items, ignored)
        elif tf.io.gfile.exists(entry):
            if is_video_file(entry):
                items.append(VideoItem(str(entry), Path(entry).stem))
            else:
                items.extend(read_manifest(str(entry), labels))
        elif any(c in entry for c in "*?["):
            matches = tf.io.gfile.glob(entry)
            if not matches:
                raise DataError(f"no files match the input pattern '{entry}'")
            _videos_of(matches, items, ignored)
        else:
            raise DataError(f"input not found: {entry}")
    seen: Dict[str, str] = {}
    for item in items:
        if item.video_id in seen:
            raise DataError(f"two videos have the id '{item.video_id}': {seen[item.video_id]} "
                            f"and {item.path} (ids are file names without extension)")
        seen[item.video_id] = item.path
    return items, ignored
