"""Check a glob of shards before a long run: layout, bad records, histograms, labels.

`python tools/validate_data.py` is `videotag validate-data`, with the same flags; the
command lives in videotag/cli/validate_data.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("validate-data")
