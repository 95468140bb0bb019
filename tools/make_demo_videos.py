"""Write a small labelled video collection to try the raw-video pipeline on.

`python tools/make_demo_videos.py` is `videotag make-demo-videos`, with the same flags; the command
lives in videotag/cli/make_demo_videos.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("make-demo-videos")
