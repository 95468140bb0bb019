"""Build the faiss index of a set of embeddings and save it beside them.

`python tools/build_index.py` is `videotag build-index`, with the same flags; the
command lives in videotag/cli/build_index.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("build-index")
