"""The `videotag` command: one module per subcommand (`videotag.cli.train`, ...), the
dispatcher (`videotag.cli.main`) and, here, the error handling they share."""

from __future__ import annotations

import sys
from typing import Callable, List

from videotag.errors import RunStopped, VideotagError


def run(main: Callable[[List[str]], int]) -> Callable[[List[str]], None]:
    """Wraps an absl main: project errors (and a disk that ran out of
    space) print `error: ...` and exit 1, no traceback;
    a run stopped by SIGTERM/SIGINT after its checkpoint prints what it saved and
    exits 128 + the signal's number."""

    def wrapped(argv: List[str]) -> None:
        import tensorflow as tf
        from absl import logging

        logging.set_verbosity(logging.WARNING)
        tf.get_logger().setLevel("WARNING")

        from videotag.data.tf_errors import data_errors
        from videotag.filesystem import describe_write_error

        try:
            with data_errors():
                code = main(argv)
        except RunStopped as exc:
            print(exc, file=sys.stderr)
            sys.exit(exc.exit_status)
        except VideotagError as exc:
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(1)
        except (OSError, tf.errors.OpError) as exc:
            # a write that ran out of space where no output named its path
            reason = describe_write_error(exc)
            if reason is None or "space" not in reason and "size limit" not in reason:
                raise
            print(f"error: {reason}: {' '.join(str(exc).split())}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
        sys.exit(code or 0)

    return wrapped
