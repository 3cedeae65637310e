"""What every command shares: one logging route, and one line per error the user can fix.

Progress bars are tqdm's; every other message goes through the `reasonlite` logger, whose handler writes with
`tqdm.write` so that a message never tears a bar. An error a user can fix (a bad config, bad data, no server, a
missing file) is printed as `error: ...` lines and exits 1; `--debug` or REASONLITE_DEBUG=1 adds the full
traceback, for the bug reports that need it.
"""
import logging
import os
import sys
import traceback
from contextlib import contextmanager

from reasonlite.signals import Stopped

DEBUG_ENV = "REASONLITE_DEBUG"


class _TqdmHandler(logging.Handler):
    def emit(self, record):
        try:
            from tqdm import tqdm
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never be the thing that fails
            self.handleError(record)


def debug_enabled(flag=False):
    return bool(flag) or os.environ.get(DEBUG_ENV, "").strip().lower() in ("1", "true", "yes")


def setup_logging(debug=False):
    """Route the `reasonlite` logger through tqdm to stderr; idempotent (entry scripts and tests may call it twice)."""
    logger = logging.getLogger("reasonlite")
    if not any(isinstance(h, _TqdmHandler) for h in logger.handlers):
        handler = _TqdmHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.DEBUG if debug_enabled(debug) else logging.INFO)
    return logger


def add_debug_flag(parser):
    parser.add_argument("--debug", action="store_true",
                        help=f"show the full traceback of an error (or set {DEBUG_ENV}=1)")
    return parser


@contextmanager
def user_errors(debug=False):
    """Turn the errors a user can fix into `error:` lines and exit 1; a graceful stop on a signal exits 75
    (signals.STOPPED_EXIT) with its one-line summary; a KeyboardInterrupt that got through exits 130.

    ConfigError and DataError are ValueErrors, NoServerError and ServerError RuntimeErrors: all of them name the
    file, line, key or server to fix, so their message is the whole story unless --debug asks for more.
    """
    debug = debug_enabled(debug)
    setup_logging(debug)
    try:
        yield
    except Stopped as e:  # a signal asked to stop and what was finished is saved: not an error
        print(f"stopped by {e}", file=sys.stderr)
        sys.exit(e.exit_code)
    except (ValueError, RuntimeError, OSError) as e:
        if debug:
            traceback.print_exc()
        for line in str(e).splitlines() or [type(e).__name__]:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
