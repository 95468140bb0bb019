"""Predict the top-k tags of every record with Apache Beam: JSON Lines shards.

`python tools/batch_predict.py` is `videotag batch-predict`, with the same flags; the command
lives in videotag/cli/batch_predict.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("batch-predict")
