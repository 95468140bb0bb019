"""Write a small labelled video collection to try the raw-video pipeline on.

    videotag make-demo-videos --output_dir=demo_videos --num_videos=24

Each video shows one of three colours and plays one of two tones, labelled with
both; the folder gets the videos, `labels.txt` and `manifest.tsv`.
`python tools/make_demo_videos.py` takes the same flags.
"""

import sys

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("output_dir", "demo_videos", "Folder of the videos.")
    flags.DEFINE_integer("num_videos", 24, "Number of videos.")
    flags.DEFINE_integer("seed", 0, "Random seed.")


def main(argv):
    """Writes the videos, labels.txt and manifest.tsv."""
    del argv
    from videotag.extraction.synthetic import make_demo_videos

    manifest = make_demo_videos(FLAGS.output_dir, FLAGS.num_videos, FLAGS.seed)
    print(f"wrote {FLAGS.num_videos} videos, labels.txt and {manifest}", file=sys.stderr)
    return 0
