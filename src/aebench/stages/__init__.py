"""The DVC stages, one module each: download, preprocess, diffmap, train, evaluate, report.

dvc.yaml runs `python stages/<stage>.py --<option> <value> ...` (or `python -m aebench.stages <stage> ...`). Each module has a
`run(...)` that does the stage's work as a plain function of names (tests call it directly)
and a `main()` that parses the options, sets up logging and turns a `UserError` into one line
(`stage_main`). Every stage reads params.yaml through `aebench.plan.params_for_stage`, writes
its outputs atomically, and names the file and the fix of every mistake a user can make.
"""

from __future__ import annotations

import argparse
from typing import Callable

from aebench.errors import cli_entry, setup_logging


OPTION_TYPES = {"seed": int}  # every other option is a name


def stage_main(run: Callable[..., object], *options: str, argv: list[str] | None = None) -> None:
    """Parse the required `--<option>` arguments and call `run` with them, in order."""
    parser = argparse.ArgumentParser(prog=f"python -m {run.__module__}", description=(run.__doc__ or "").strip())
    for option in options:
        parser.add_argument(f"--{option}", required=True, type=OPTION_TYPES.get(option, str))
    args = parser.parse_args(argv)  # usage errors exit 2 here

    @cli_entry
    def call() -> None:
        setup_logging()
        run(*(getattr(args, option) for option in options))

    call()
