"""The demo dataset in video-level form: YT8M video-level records (`mean_rgb`,
`mean_audio`: each the mean of the video's dequantized frames) of the demo videos.

Generated on first use from the frame-level demo records (`videotag.data.demo`) into
`<demo root>/video/`, and reused while its manifest matches the frame-level data's.
"""

from __future__ import annotations

import glob
import json
import os
import sys
import time

from videotag.data.demo import MANIFEST, DemoData, ensure_demo_data, generate_atomically
from videotag.data.means import MEAN_PREFIX, write_video_level

VIDEO_DIR = "video"
FRAME_SIZES = {"rgb": 1024, "audio": 128}
# Bump whenever the conversion's output changes.
VIDEO_FORMAT_VERSION = 1
FEATURE_NAMES = [MEAN_PREFIX + name for name in FRAME_SIZES]
FEATURE_SIZES = list(FRAME_SIZES.values())


def ensure_video_demo_data(demo: DemoData | None = None, verbose: bool = True) -> DemoData:
    """The video-level demo dataset, converting the frame-level one first when it is
    missing or outdated.

    Args:
        demo: the frame-level demo dataset; default `ensure_demo_data()`.
        verbose: print progress to stderr while converting.

    Returns:
        A `DemoData` whose patterns name the video-level shards
        (`<root>/video/train*.tfrecord`, `validate*.tfrecord`; the same counts,
        classes and vocabulary file as the frame-level data). Their features are
        `FEATURE_NAMES` of `FEATURE_SIZES` floats.

    Raises:
        DataError: the folder cannot be written.
    """
    demo = demo or ensure_demo_data(verbose=verbose)
    root = os.path.join(demo.root, VIDEO_DIR)
    with open(os.path.join(demo.root, MANIFEST), encoding="utf-8") as f:
        expected = {"frame_manifest": json.load(f), "video_format_version": VIDEO_FORMAT_VERSION}
    found = _reusable(root, demo, expected)
    if found is not None:
        return found
    if verbose:
        print(f"writing the demo data in video-level form into {root} ...", end="",
              file=sys.stderr, flush=True)
    started = time.perf_counter()

    def make(temp):
        os.makedirs(temp, exist_ok=True)
        for path in sorted(glob.glob(demo.train_pattern)) + sorted(glob.glob(demo.eval_pattern)):
            # shard by shard: the same videos in the same order
            write_video_level([path], [os.path.join(temp, os.path.basename(path))], FRAME_SIZES)
        with open(os.path.join(temp, MANIFEST), "w", encoding="utf-8") as f:
            json.dump(expected, f, indent=2, sort_keys=True)
        return _data(root, demo)

    data = generate_atomically(root, make, lambda: _reusable(root, demo, expected))
    if verbose:
        print(f" done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return data


def _data(root: str, demo: DemoData) -> DemoData:
    return DemoData(root, os.path.join(root, "train*.tfrecord"),
                    os.path.join(root, "validate*.tfrecord"), demo.label_file,
                    demo.num_classes, demo.num_train, demo.num_eval, demo.num_categories)


def _reusable(root: str, demo: DemoData, expected: dict) -> DemoData | None:
    try:
        with open(os.path.join(root, MANIFEST), encoding="utf-8") as f:
            if json.load(f) != expected:
                return None
    except (OSError, ValueError):
        return None
    names = [os.path.basename(p) for p in sorted(glob.glob(demo.train_pattern))
             + sorted(glob.glob(demo.eval_pattern))]
    if not all(os.path.isfile(os.path.join(root, n)) for n in names):
        return None
    return _data(root, demo)
