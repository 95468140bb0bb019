"""Write the L2-normalised embedding of every record with Apache Beam: TFRecord shards.

`python tools/batch_embed.py` is `videotag batch-embed`, with the same flags; the command
lives in videotag/cli/batch_embed.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("batch-embed")
