"""Extract YT8M frame-level records from your own videos.

`python tools/extract_features.py` is `videotag extract`, with the same flags; the command
lives in videotag/cli/extract.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("extract")
