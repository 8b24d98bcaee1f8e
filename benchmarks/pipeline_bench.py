"""Wall time of the default pipeline: the whole `dvc repro` on a fresh clone, a no-op
`dvc repro` right after it, the time of every stage, and the Python start-up cost a stage
pays (a benchmark, not a test):

    .venv/bin/python benchmarks/pipeline_bench.py [--keep /tmp/aebench-repro] [--reference COMMIT]

The clone is of the committed HEAD (uncommitted edits are not measured) and runs with this
checkout's virtualenv on the PATH, as `make repro` does after set-up; set-up (the venv
install, about 2 minutes) is not counted. `--reference COMMIT` measures an older commit the
same way, as the reference for the next run of HEAD: measure both in the same hour, because
a shared VM's speed at file-heavy work (imports, DVC's bookkeeping) varied by 1.5x between
sessions here. A stage's time is from the line where DVC starts it
to the line where DVC starts the next one (or exits), so it includes DVC's own bookkeeping and
the stage's interpreter start-up, which is what a user waits for.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, canary_seconds, update_results  # noqa: E402

STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
IMPORTS = ("pass", "import numpy", "import torch", "import mlflow", "import great_expectations",
           "import sklearn", "import aebench.stages.train")


def timed_repro(cwd: Path, env: dict) -> tuple[float, dict[str, float], int]:
    """Run `dvc repro`, streaming its output; (total seconds, seconds per stage, exit code)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(["dvc", "repro"], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    stages: dict[str, float] = {}
    current, started = None, t0
    for line in proc.stdout:
        match = STAGE_LINE.match(line)
        if match:
            now = time.perf_counter()
            if current:
                stages[current] = now - started
            current, started = match.group(1), now
            print(f"[{now - t0:7.1f}s] {current}", flush=True)
    code = proc.wait()
    end = time.perf_counter()
    if current:
        stages[current] = end - started
    return end - t0, stages, code


def import_seconds(python: str, repeats: int = 3) -> dict[str, float]:
    """Median wall time of a fresh interpreter running each import (the bare start-up first)."""
    out = {}
    for statement in IMPORTS:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            subprocess.run([python, "-c", statement], check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        out[statement.replace("import ", "") if statement != "pass" else "python"] = round(statistics.median(times), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="clone here and keep it (default: a temporary folder)")
    parser.add_argument("--reference", metavar="COMMIT", help="measure this older commit instead, as the "
                        "reference the next run of HEAD is compared with (results.json `repro_reference`)")
    args = parser.parse_args()
    venv_bin = REPO / ".venv" / "bin"
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "MLFLOW_DISABLE_TELEMETRY": "true",
           "DVC_NO_ANALYTICS": "1", "GX_ANALYTICS_ENABLED": "False", "AEBENCH_WARM": "1"}  # as `make repro`
    env.pop("AEBENCH_ROOT", None)
    env.pop("MLFLOW_TRACKING_URI", None)
    work = args.keep or Path(tempfile.mkdtemp(prefix="aebench-repro-"))
    if work.exists():
        shutil.rmtree(work)
    subprocess.run(["git", "clone", "-q", str(REPO), str(work)], check=True)
    if args.reference:
        subprocess.run(["git", "checkout", "-q", args.reference], cwd=work, check=True)
    env["PYTHONPATH"] = str(work / "src")  # the clone's aebench, not the venv's editable install of this checkout
    print(f"fresh clone of {REPO} at {work}", flush=True)
    canary = {"before": canary_seconds()}
    total, stages, code = timed_repro(work, env)
    if code != 0:
        raise SystemExit(f"dvc repro failed (exit {code}) in {work}")
    t0 = time.perf_counter()
    subprocess.run(["dvc", "repro"], cwd=work, env=env, check=True, capture_output=True)
    noop = time.perf_counter() - t0
    imports = import_seconds(str(venv_bin / "python"))
    canary["after"] = canary_seconds()
    print(f"machine canary (pure-Python loop, s): before {canary['before']}, after {canary['after']}")
    by_kind: dict[str, list[float]] = {}
    for name, seconds in stages.items():
        by_kind.setdefault(name.split("@")[0], []).append(seconds)
    print(f"\ndvc repro: {total:.0f} s for {len(stages)} stages; no-op dvc repro: {noop:.1f} s")
    print(f"{'stage kind':12s} {'count':>5s} {'total s':>8s} {'median s':>9s}")
    for kind, values in by_kind.items():
        print(f"{kind:12s} {len(values):5d} {sum(values):8.1f} {statistics.median(values):9.1f}")
    print("slowest stages: " + ", ".join(f"{k} {v:.0f}s" for k, v in sorted(stages.items(), key=lambda kv: -kv[1])[:8]))
    print("interpreter start-up + import (median of 3): " + ", ".join(f"{k} {v:.2f}s" for k, v in imports.items()))
    if args.reference:
        update_results({"repro_reference": {
            "label": f"commit {args.reference}, measured {time.strftime('%Y-%m-%d %H:%M')} on this machine",
            "repro_seconds": round(total, 1), "noop_repro_seconds": round(noop, 2),
            "stage_kind_seconds": {k: round(sum(v), 1) for k, v in by_kind.items()},
            "import_seconds": imports, "canary_seconds": canary}})
    else:
        update_results({"repro_seconds": round(total, 1), "noop_repro_seconds": round(noop, 2),
                        "repro_stage_count": len(stages),
                        "stage_seconds": {k: round(v, 1) for k, v in stages.items()},
                        "import_seconds": imports, "canary_seconds": canary})
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
