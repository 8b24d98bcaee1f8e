"""`python -m aebench.stages <stage> --<option> <value> ...`, and the thin scripts in the
repository's `stages/` folder that dvc.yaml runs (`python stages/<stage>.py ...`).

Both run `aebench.stages.<stage>.main()` through `dispatch`. With `AEBENCH_WARM=1` (`make repro` sets it) the stage
runs in a fork of the warm stage server (`aebench.warm`), which has imported the third-party
libraries once; the hand-off happens here, before the stage module's own imports.
"""

from __future__ import annotations

import importlib
import sys

from aebench import warm

STAGES = ("download", "preprocess", "diffmap", "train", "evaluate", "report")


def dispatch(name: str, argv: list[str], script: str | None = None) -> None:
    """Run stage `name` with its options `argv`; `script` is the thin script that was started
    (the warm server re-runs it in its fork), None under `python -m aebench.stages`."""
    def run() -> None:
        importlib.import_module(f"aebench.stages.{name}").main(argv)

    if script is None:
        warm.run_module("aebench.stages", run)
    else:
        warm.run(script, run)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in STAGES:
        print(f"usage: python -m aebench.stages {{{','.join(STAGES)}}} [--option value ...]", file=sys.stderr)
        raise SystemExit(2)
    dispatch(sys.argv[1], sys.argv[2:])


if __name__ == "__main__":
    main()
