"""`python -m videotag <command> [flags]`: the same as the `videotag` command."""

from videotag.cli.main import main

if __name__ == "__main__":
    main()
