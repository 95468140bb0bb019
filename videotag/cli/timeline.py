r"""Write a self-contained HTML page of segment predictions: tags on a timeline.

    videotag predict --segments --model_dir=runs/segments \
        --input_data_pattern='data/test*.tfrecord' --timeline_file=timeline.jsonl
    videotag timeline --timeline_file=timeline.jsonl --output_file=timeline.html
    # with the videos (after `videotag predict --segments --videos=my_videos/ ...`)
    videotag timeline --timeline_file=timeline.jsonl --videos=my_videos/ \
        --output_file=my_videos/timeline.html

Per video: its tags, and one lane per tag with a block for each segment where the tag
is among the segment's top tags. With the videos, the page plays them and lights up
the playing segment's tags; clicking a tag jumps to its next segment. The page needs
no server and loads nothing from the network; the videos are linked by their path
relative to the page (--embed_videos puts them inside it). `python tools/timeline.py`
takes the same flags.
"""

import sys

from absl import flags

FLAGS = flags.FLAGS


def define_flags() -> None:
    """Defines the flags of this command in absl's global FLAGS."""
    flags.DEFINE_string("timeline_file", None, "The timeline (JSON Lines) of `videotag "
                        "predict --segments`.")
    flags.DEFINE_string("output_file", "timeline.html", "The HTML page.")
    flags.DEFINE_multi_string("videos", [], "Video files, folders or manifests to play on the "
                              "page (repeatable); matched to the timeline's ids by path or "
                              "name.")
    flags.DEFINE_bool("embed_videos", False, "Put the videos inside the page instead of "
                      "linking them.")
    flags.DEFINE_integer("max_videos", 200, "Videos on the page (the first ones).")
    flags.DEFINE_float("min_probability", 0.1, "Segment tags below this are not drawn.")
    flags.DEFINE_integer("max_lanes", 8, "Tag lanes per video.")


def main(argv):
    """Writes the page. Returns the exit status."""
    del argv
    from videotag.errors import VideotagError
    from videotag.inference.timeline_page import write_timeline_page

    if not FLAGS.timeline_file:
        raise VideotagError("--timeline_file is required (see videotag predict --segments)")
    if FLAGS.max_videos <= 0 or FLAGS.max_lanes <= 0:
        raise VideotagError("--max_videos and --max_lanes must be positive")
    videos = [part for value in FLAGS.videos for part in value.split(",") if part]
    shown, playable = write_timeline_page(
        FLAGS.timeline_file, FLAGS.output_file, videos, FLAGS.embed_videos, FLAGS.max_videos,
        FLAGS.min_probability, FLAGS.max_lanes)
    note = f", {playable} with their video" if videos else ""
    print(f"wrote {FLAGS.output_file}: {shown} videos{note}", file=sys.stderr)
    return 0
