"""The most similar videos (cosine of the embeddings) of some videos or of all.

`python tools/similar.py` is `videotag similar`, with the same flags; the command
lives in videotag/cli/similar.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("similar")
