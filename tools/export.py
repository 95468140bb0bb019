"""Export a trained model as a SavedModel for TF Serving.

`python tools/export.py` is `videotag export`, with the same flags; the command
lives in videotag/cli/export.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("export")
