"""The evaluation suites' seconds of a profile's runs, from its `dvc repro` logs (the evaluator
logs `<suite> done in <s>s`), added to `results/<profile>/time.md` beside the per-run table
that `aebench profile` writes there (`aebench.report.time_use`).

    python benchmarks/profile_time.py [--profile paper] [--log dvc-repro.log ...]

Writes `results/<profile>/time.md` and prints it. Every stage's seconds are those it recorded
on the machine named in `provenance.json` for its run; stages that ran beside other work
(tests, a second job) record that day's seconds, not the code's best.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

from aebench.report import time_use

REPO = Path(__file__).resolve().parents[1]
SUITE = re.compile(r"evaluator: (\w+)_suite done in ([0-9.]+)s")
STAGE = re.compile(r"^Running stage 'evaluate-([\w-]+?)-(\w+)@(\d+)'")


def suites(logs: list[Path]) -> dict[str, dict[str, float]]:
    """Evaluation suite -> model -> seconds, from `dvc repro` logs."""
    found: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for log in logs:
        model = None
        for line in log.read_text(errors="replace").splitlines():
            if stage := STAGE.match(line):
                model = f"{stage.group(1)}-{stage.group(2)}"
            elif (suite := SUITE.search(line)) and model:
                found[suite.group(1)][model] += float(suite.group(2))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--log", nargs="*", type=Path, default=[])
    args = parser.parse_args()
    print(time_use.write(REPO / "results" / args.profile, args.profile, suites(args.log)))


if __name__ == "__main__":
    main()
