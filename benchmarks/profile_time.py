"""Where a profile's time goes: training and evaluation seconds per run (summed over its seeds,
from each `run.json` and `metrics.json` of `results/<profile>/`), the evaluation suites' seconds
from the `dvc repro` logs when given (the evaluator logs `<suite> done in <s>s`), and what is
left of the recorded wall time (DVC's bookkeeping, stage start-up, data and report stages).

    python benchmarks/profile_time.py [--profile paper] [--log dvc-repro.log ...]

Writes `results/<profile>/time.md` and prints it. Every stage's seconds are those it recorded
on the machine named in `provenance.json` for its run; stages that ran beside other work
(tests, a second job) record that day's seconds, not the code's best.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = re.compile(r"evaluator: (\w+)_suite done in ([0-9.]+)s")
STAGE = re.compile(r"^Running stage 'evaluate-([\w-]+?)-(\w+)@(\d+)'")


def per_run(folder: Path) -> dict[tuple[str, str], dict]:
    """(dataset, model) -> seeds, training and evaluation seconds summed over the seeds."""
    runs: dict[tuple[str, str], dict] = defaultdict(lambda: {"seeds": 0, "train": 0.0, "evaluate": 0.0})
    for run_json in sorted(folder.glob("models/*/*/seed*/run.json")):
        dataset, model = run_json.parts[-4], run_json.parts[-3]
        entry = runs[dataset, model]
        entry["seeds"] += 1
        entry["train"] += json.loads(run_json.read_text()).get("train_seconds", 0.0)
        metrics = folder / "eval" / dataset / model / run_json.parent.name / "metrics.json"
        if metrics.is_file():
            entry["evaluate"] += json.loads(metrics.read_text()).get("eval_seconds", 0.0)
    return dict(runs)


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


def render(profile: str, runs: dict, by_suite: dict, provenance: dict) -> str:
    train, evaluate = sum(r["train"] for r in runs.values()), sum(r["evaluate"] for r in runs.values())
    wall = sum(r["wall_seconds"] for r in provenance.get("runs", []))
    machines = sorted({r.get("machine", "not recorded") for r in provenance.get("runs", [])})
    lines = [f"# Where the `{profile}` profile's time goes", "",
             f"Machines: {'; '.join(machines)}. Every `dvc repro` of the profile together: {wall:,.0f} s of wall time; "
             f"training {train:,.0f} s ({train / wall:.0%}), evaluation {evaluate:,.0f} s ({evaluate / wall:.0%}), "
             f"the rest {wall - train - evaluate:,.0f} s (DVC, stage start-up, data and report stages, and "
             f"stages whose outputs were later replaced)." if wall else "No wall time recorded.", "",
             "| run | seeds | training s | evaluation s | per seed s |", "|---|---:|---:|---:|---:|"]
    for (dataset, model), r in sorted(runs.items(), key=lambda kv: -(kv[1]["train"] + kv[1]["evaluate"])):
        lines.append(f"| {dataset}-{model} | {r['seeds']} | {r['train']:,.0f} | {r['evaluate']:,.0f} | "
                     f"{(r['train'] + r['evaluate']) / r['seeds']:,.0f} |")
    if by_suite:
        lines += ["", "Evaluation suites in the logs given (seconds, summed over the stages they name):", "",
                  "| suite | total s | the largest |", "|---|---:|---|"]
        for suite, models in sorted(by_suite.items(), key=lambda kv: -sum(kv[1].values())):
            top = sorted(models.items(), key=lambda kv: -kv[1])[:3]
            lines.append(f"| {suite} | {sum(models.values()):,.0f} | "
                         + ", ".join(f"{m} {s:,.0f}" for m, s in top) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="paper")
    parser.add_argument("--log", nargs="*", type=Path, default=[])
    args = parser.parse_args()
    folder = REPO / "results" / args.profile
    provenance = json.loads((folder / "provenance.json").read_text())
    text = render(args.profile, per_run(folder), suites(args.log), provenance)
    (folder / "time.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
