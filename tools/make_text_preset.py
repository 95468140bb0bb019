"""Write a small BERT preset with random weights, to try the transformer title encoder.

`python tools/make_text_preset.py` is `videotag make-text-preset`, with the same flags; the
command lives in videotag/cli/make_text_preset.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("make-text-preset")
