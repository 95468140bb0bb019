"""Extract YT8M frame-level records from your own videos with Apache Beam.

`python tools/batch_extract.py` is `videotag batch-extract`, with the same flags; the
command lives in videotag/cli/batch_extract.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("batch-extract")
