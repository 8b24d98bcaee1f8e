"""The one entry point behind every `stages/<stage>.py`: parse the stage's arguments, call its
library function, turn user errors into one line (aebench.errors), and run in the warm stage
server when one is up (aebench.warm). Only this module and aebench.warm are imported before
the hand-off, so a stage process that hands off costs a bare interpreter start.
"""

from __future__ import annotations

import argparse
import importlib

from aebench import warm


def run_stage(script: str, target: str, *options: str) -> None:
    """Run the DVC stage `script` (its __file__): `target` is "module:function", called with
    the required `--<option>` arguments in order."""
    module_name, function_name = target.split(":")
    parser = argparse.ArgumentParser(description=f"DVC stage: see {module_name}.{function_name}")
    for option in options:
        parser.add_argument(f"--{option}", required=True)
    parser.parse_args()  # usage errors exit here, before any hand-off

    def main() -> None:
        from aebench.errors import cli_entry
        from aebench.pipeline import setup_logging

        @cli_entry
        def call() -> None:
            args = parser.parse_args()
            setup_logging()
            function = getattr(importlib.import_module(module_name), function_name)
            function(*(getattr(args, option) for option in options))

        call()

    warm.run(script, main)
