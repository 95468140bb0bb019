"""The built-in demo dataset: synthetic YT8M frame-level records that can be learned.

`ensure_demo_data()` generates the dataset on first use and reuses it afterwards;
`videotag train` trains on it when no data is given, so a new user sees a model learn
within minutes on a laptop CPU. It goes to `default_root()`: `$VIDEOTAG_DEMO_DIR` when
set; else `data/demo_generated` in a source checkout (git ignores it); else, for an
installed package, the user cache (`$XDG_CACHE_HOME/videotag/demo`, by default
`~/.cache/videotag/demo`).

The dataset: ~40 everyday classes (`videotag/data/demo_vocabulary.csv`), 1-4 labels
per video, frames of class-dependent rgb and audio content
(`videotag.data.demo_frames`), a title and a category per video
(`videotag.data.demo_titles`), and segment ratings in the YT8M 2019 layout
(`videotag.data.demo_segments`), all deterministic given the seed.
"""

import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np

from videotag.data import demo_segments
from videotag.data.demo_frames import World, audio_lengths, chunk_frames, video_lengths
from videotag.data.demo_titles import CATEGORIES, Titles
from videotag.data.labels import count_classes, load_label_names
from videotag.data.writer import RecordWriter, frame_example
from videotag.errors import DataError

# package data: an installed wheel has it too
VOCABULARY = str(resources.files("videotag") / "data" / "demo_vocabulary.csv")
MANIFEST = "demo.json"
# Bump whenever the generator's output changes, so old demo data is regenerated.
# 4: segment ratings (context keys only: the frames and labels are those of 3).
FORMAT_VERSION = 4

DEFAULT_NUM_TRAIN = 4000
DEFAULT_NUM_EVAL = 1000
DEMO_DIR_ENV = "VIDEOTAG_DEMO_DIR"  # the folder of the demo data, when set
_CHUNK = 128  # videos generated per vectorized step


@dataclasses.dataclass(frozen=True)
class DemoData:
    """Where the demo dataset lives and what it holds.

    Every record has a `title`, a `category` in [0, num_categories) and segment
    ratings (the segment classes in `segment_label_file`).
    """

    root: str
    train_pattern: str
    eval_pattern: str
    label_file: str
    num_classes: int
    num_train: int
    num_eval: int
    num_categories: int = len(CATEGORIES)
    segment_label_file: str = ""


def source_checkout() -> Path | None:
    """The source tree videotag runs from (the folder above the package, holding
    `pyproject.toml`), or None for an installed package (a wheel in site-packages)."""
    package = resources.files("videotag")
    if not isinstance(package, Path):  # e.g. imported from a zip file
        return None
    root = package.parent
    return root if (root / "pyproject.toml").is_file() else None


def default_root() -> str:
    """The folder of the demo data when none is given; the first that applies:

    1. `$VIDEOTAG_DEMO_DIR`;
    2. `<checkout>/data/demo_generated` in a source checkout (`source_checkout()`);
    3. `user_cache_root()`: `$XDG_CACHE_HOME/videotag/demo`, or
       `~/.cache/videotag/demo` when `XDG_CACHE_HOME` is unset or not an absolute
       path (the XDG rule).

    Returns:
        An absolute path.
    """
    given = os.environ.get(DEMO_DIR_ENV)
    if given:
        return os.path.abspath(os.path.expanduser(given))
    checkout = source_checkout()
    if checkout is not None:
        return str(checkout / "data" / "demo_generated")
    return user_cache_root()


def user_cache_root() -> str:
    """The demo data's folder in the user cache: `$XDG_CACHE_HOME/videotag/demo`, or
    `~/.cache/videotag/demo` when `XDG_CACHE_HOME` is unset or not an absolute path."""
    cache = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(cache):
        cache = os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "videotag", "demo")


def read_vocabulary(path: str = VOCABULARY) -> list[str]:
    """Class names by index from a YT8M-style vocabulary csv (`Index,Name,...`).

    Raises:
        DataError: the file is missing or malformed.
    """
    return load_label_names(path, count_classes(path))


def _demo_data(root: str, num_classes: int, num_train: int, num_eval: int,
               num_categories: int = len(CATEGORIES)) -> DemoData:
    return DemoData(root, os.path.join(root, "train*.tfrecord"),
                    os.path.join(root, "validate*.tfrecord"),
                    os.path.join(root, "vocabulary.csv"), num_classes, num_train,
                    num_eval, num_categories,
                    os.path.join(root, demo_segments.SEGMENT_LABEL_FILE))


def _write_split(world: World, split: str, num: int, paths: list[str],
                 rng: np.random.Generator, titles: Titles | None = None,
                 text_rng: np.random.Generator | None = None,
                 rating_rng: np.random.Generator | None = None,
                 segment_classes: set[int] | None = None) -> None:
    lengths = video_lengths(num, rng)
    audio = audio_lengths(lengths, rng)
    with RecordWriter(paths) as writer:
        for first in range(0, num, _CHUNK):
            last = min(first + _CHUNK, num)
            sampled = [world.sample_labels(rng) for _ in range(first, last)]
            frames = chunk_frames(world, [s[0] for s in sampled], [s[1] for s in sampled],
                                  lengths[first:last], rng)
            start = 0
            for i, (labels, distractors, main) in enumerate(sampled, first):
                rgb = frames["rgb"][start:start + lengths[i]]
                audio_frames = frames["audio"][start:start + audio[i]]
                title = category = segments = None
                if titles is not None:  # a random stream of their own: same frames
                    title = titles.title(labels, distractors, main, text_rng)
                    category = titles.category_of(main, text_rng)
                if rating_rng is not None:  # likewise
                    content = frames["content"][start:start + min(lengths[i], audio[i])]
                    segments = demo_segments.segment_ratings(content, labels, segment_classes,
                                                             rating_rng)
                writer.write(frame_example(f"demo-{split}-{i:06d}", labels,
                                           {"rgb": rgb, "audio": audio_frames}, title=title,
                                           category=category, segments=segments))
                start += lengths[i]


def _manifest(num_train: int, num_eval: int, seed: int, num_shards: int) -> dict:
    with open(VOCABULARY, "rb") as f:
        vocabulary_sha256 = hashlib.sha256(f.read()).hexdigest()
    return {"format_version": FORMAT_VERSION, "num_train": num_train,
            "num_eval": num_eval, "seed": seed, "num_shards": num_shards,
            "vocabulary_sha256": vocabulary_sha256}


def _check_sizes(**sizes) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def generate(root: str, num_train: int = DEFAULT_NUM_TRAIN,
             num_eval: int = DEFAULT_NUM_EVAL, seed: int = 0,
             num_shards: int = 4) -> DemoData:
    """Writes the demo dataset into `root` (always; existing files are replaced).

    Writes `train0000.tfrecord`.., `validate0000.tfrecord`.., `vocabulary.csv`,
    `segment_label_ids.csv` and, last, the manifest `demo.json`. The same arguments give byte-identical files.

    Args:
        root: output folder (created if needed).
        num_train: number of training videos.
        num_eval: number of validation videos.
        seed: random seed.
        num_shards: number of shards per split.

    Returns:
        The `DemoData` describing the files.
    """
    _check_sizes(num_train=num_train, num_eval=num_eval, num_shards=num_shards)
    root = os.fspath(root)
    os.makedirs(root, exist_ok=True)
    names = read_vocabulary(VOCABULARY)
    # spawn(7)[:3] equals spawn(3): the frames are those of the data without titles
    # and ratings, the titles those of the data without ratings
    world_seq, train_seq, eval_seq, train_text, eval_text, train_rating, eval_rating = (
        np.random.SeedSequence(seed).spawn(7))
    world = World(names, np.random.default_rng(world_seq))
    titles = Titles(world, names)
    classes = demo_segments.segment_classes(names)
    for split, num, seq, text_seq, rating_seq in (
            ("train", num_train, train_seq, train_text, train_rating),
            ("validate", num_eval, eval_seq, eval_text, eval_rating)):
        paths = [os.path.join(root, f"{split}{i:04d}.tfrecord")
                 for i in range(num_shards)]
        _write_split(world, split, num, paths, np.random.default_rng(seq), titles,
                     np.random.default_rng(text_seq), np.random.default_rng(rating_seq),
                     set(classes))
    shutil.copyfile(VOCABULARY, os.path.join(root, "vocabulary.csv"))
    demo_segments.write_segment_label_file(
        os.path.join(root, demo_segments.SEGMENT_LABEL_FILE), classes)
    manifest = dict(_manifest(num_train, num_eval, seed, num_shards),
                    num_classes=len(names), num_categories=len(CATEGORIES))
    with open(os.path.join(root, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    return _demo_data(root, len(names), num_train, num_eval)


def _reusable(root: str, expected: dict) -> DemoData | None:
    """The existing dataset in `root` if its manifest matches `expected`, else None."""
    try:
        with open(os.path.join(root, MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or any(
            manifest.get(k) != v for k, v in expected.items()):
        return None
    shards = [os.path.join(root, f"{split}{i:04d}.tfrecord")
              for split in ("train", "validate") for i in range(expected["num_shards"])]
    shards += [os.path.join(root, "vocabulary.csv"),
               os.path.join(root, demo_segments.SEGMENT_LABEL_FILE)]
    if not all(os.path.isfile(p) for p in shards):
        return None
    return _demo_data(root, int(manifest["num_classes"]), expected["num_train"],
                      expected["num_eval"], int(manifest.get("num_categories", len(CATEGORIES))))


def _remove_stale(root: str) -> None:
    """Deletes leftovers (`<root>.tmp-<pid>`, `<root>.old-<pid>`) of dead processes."""
    parent, base = os.path.split(root)
    for entry in os.listdir(parent):
        tag, _, pid = entry[len(base):].partition("-")
        if not (entry.startswith(base) and tag in (".tmp", ".old") and pid.isdigit()):
            continue
        if int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
                continue  # a live process (maybe generating right now)
            except ProcessLookupError:
                pass
            except PermissionError:  # alive, owned by another user
                continue
        shutil.rmtree(os.path.join(parent, entry), ignore_errors=True)


def ensure_demo_data(root: str | None = None, num_train: int = DEFAULT_NUM_TRAIN,
                     num_eval: int = DEFAULT_NUM_EVAL, seed: int = 0,
                     num_shards: int = 4, verbose: bool = True) -> DemoData:
    """Returns the demo dataset, generating it first if it is missing or outdated.

    The manifest `<root>/demo.json` records the arguments and `FORMAT_VERSION`; if it
    matches, the files are reused as they are. Otherwise the dataset is generated into
    a temporary sibling folder that replaces `root` only when complete, so a killed
    run never leaves a half dataset behind that would be reused.

    Args:
        root: dataset folder; default `default_root()`.
        num_train: number of training videos.
        num_eval: number of validation videos.
        seed: random seed.
        num_shards: number of shards per split.
        verbose: print progress to stderr while generating.

    Returns:
        The `DemoData`.

    Raises:
        DataError: the folder cannot be written.
    """
    _check_sizes(num_train=num_train, num_eval=num_eval, num_shards=num_shards)
    root = os.path.abspath(os.fspath(root or default_root()))
    expected = _manifest(num_train, num_eval, seed, num_shards)
    found = _reusable(root, expected)
    if found is not None:
        return found

    if verbose:
        print(f"generating demo data ({num_train + num_eval} videos) into {root} ...",
              end="", file=sys.stderr, flush=True)
    started = time.perf_counter()
    data = generate_atomically(
        root, lambda temp: generate(temp, num_train, num_eval, seed, num_shards),
        lambda: _reusable(root, expected))
    if verbose:
        print(f" done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return _demo_data(root, data.num_classes, num_train, num_eval)


def generate_atomically(root: str, make, reusable):
    """Generates a folder into a temporary sibling that replaces `root` only when
    complete, so a killed run never leaves half a folder behind that would be reused.

    Args:
        root: the folder (absolute path).
        make: `make(temp_folder)` writes the folder's files and returns a result.
        reusable: `reusable()` is the result of a folder already in place at `root`
            (another process finished first), or None.

    Returns:
        What `make` returned, or `reusable()` when another process won the race.

    Raises:
        DataError: the folder cannot be written.
    """
    temp, old = f"{root}.tmp-{os.getpid()}", f"{root}.old-{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(root), exist_ok=True)
        _remove_stale(root)
        result = make(temp)
        if os.path.exists(root):
            os.rename(root, old)
        try:
            os.rename(temp, root)
        except OSError:
            # Another process finished first: use its data if it is what we need.
            result = reusable()
            if result is None:
                raise
        shutil.rmtree(old, ignore_errors=True)
        shutil.rmtree(temp, ignore_errors=True)
    except OSError as e:
        shutil.rmtree(temp, ignore_errors=True)
        raise DataError(f"cannot write the demo data into {root}: {e}") from e
    return result
