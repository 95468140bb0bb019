"""Write the L2-normalised embedding of every video, for similar-video recall.

`python tools/embed.py` is `videotag embed`, with the same flags; the command
lives in videotag/cli/embed.py.
"""

from videotag.cli.main import run_command

if __name__ == "__main__":
    run_command("embed")
