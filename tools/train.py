"""Train a registered model (on the built-in demo data when no data is given).

`python tools/train.py` is `videotag train`, with the same flags; the command
lives in videotag/cli/train.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("train")
