"""What every entry script does with an error the user can fix: one line per problem, then a non-zero exit."""
import sys
from contextlib import contextmanager

from utils.client import NoServerError
from utils.config import ConfigError
from utils.jsonl import DataError


@contextmanager
def user_errors():
    try:
        yield
    except (ConfigError, DataError, NoServerError, ValueError, RuntimeError, OSError) as e:
        for line in str(e).splitlines() or [type(e).__name__]:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
