"""Write a self-contained HTML page of segment predictions: tags on a timeline.

`python tools/timeline.py` is `videotag timeline`, with the same flags; the command
lives in videotag/cli/timeline.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("timeline")
