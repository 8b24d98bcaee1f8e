"""User-facing errors: one clear line naming the file or key and the fix, no traceback.

Anything a user can cause (bad params, missing or corrupt data, an unknown model, an
unreachable tracking server) raises `UserError`. Entry points wrap their work in
`cli_entry`, which prints `aebench: error: <message>` and exits 2; set `AEBENCH_DEBUG=1` to
see the traceback as well. `setup_logging` is the entry points' log format.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import traceback
from typing import Callable, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """An error the user can fix; its message says what and how."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite: the run stops and nothing is registered."""


def cli_entry(func: Callable[..., T]) -> Callable[..., T]:
    """Run `func`, turning UserError (and Ctrl-C) into one line on stderr and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except UserError as exc:
            if os.environ.get("AEBENCH_DEBUG") == "1":
                traceback.print_exc()
            message = " ".join(str(exc).split())
            print(f"aebench: error: {message}", file=sys.stderr)
            raise SystemExit(2) from None
        except KeyboardInterrupt:
            print("aebench: interrupted", file=sys.stderr)
            raise SystemExit(130) from None

    return wrapper


def setup_logging() -> None:
    """INFO lines with a timestamp; the chatty libraries underneath at WARNING."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("alembic", "mlflow", "urllib3", "great_expectations", "matplotlib", "git", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
