"""Score a trained model with every metric and write a report; or compare two models.

`python tools/eval.py` is `videotag eval`, with the same flags; the command
lives in videotag/cli/eval.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("eval")
