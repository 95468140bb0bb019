"""Predict the top-k tags (and the category) of every video: CSV, JSON or JSON Lines.

`python tools/predict.py` is `videotag predict`, with the same flags; the command
lives in videotag/cli/predict.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("predict")
