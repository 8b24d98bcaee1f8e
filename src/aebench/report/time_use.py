"""Where a profile's time goes: `results/<profile>/time.md`, written from the records that
`aebench profile` collects there, so it is current after every run of the profile.

Per run: its seeds and the training and evaluation seconds summed over them (`train_seconds`
in each `run.json`, `eval_seconds` in each `metrics.json`), largest first; above the table,
every `dvc repro` of the profile together (`provenance.json`'s runs) and what training and
evaluation leave of that wall time (DVC's bookkeeping, stage start-up, the data and report
stages, and stages whose outputs a later run replaced). Every stage's seconds are those it
recorded on the machine its run names, beside whatever else that machine ran.

`suites` adds a table of the evaluation suites' seconds where a caller has them (the
`dvc repro` logs, in which the evaluator logs `<suite> done in <s>s`:
`benchmarks/profile_time.py --log`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from aebench.io import write_text_atomic

TIME_FILE = "time.md"


def per_run(folder: Path) -> dict[tuple[str, str], dict]:
    """(dataset, model) -> seeds, training and evaluation seconds summed over the seeds."""
    runs: dict[tuple[str, str], dict] = defaultdict(lambda: {"seeds": 0, "train": 0.0, "evaluate": 0.0})
    for run_json in sorted(folder.glob("models/*/*/seed*/run.json")):
        dataset, model = run_json.parts[-4], run_json.parts[-3]
        entry = runs[dataset, model]
        entry["seeds"] += 1
        entry["train"] += json.loads(run_json.read_text()).get("train_seconds") or 0.0
        metrics = folder / "eval" / dataset / model / run_json.parent.name / "metrics.json"
        if metrics.is_file():
            entry["evaluate"] += json.loads(metrics.read_text()).get("eval_seconds") or 0.0
    return dict(runs)


def render(profile: str, runs: dict, provenance: dict, suites: dict[str, dict[str, float]] | None = None) -> str:
    """time.md's Markdown (module docs); `suites`: suite -> stage -> seconds, or None."""
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
    if suites:
        lines += ["", "Evaluation suites in the logs given (seconds, summed over the stages they name):", "",
                  "| suite | total s | the largest |", "|---|---:|---|"]
        for suite, stages in sorted(suites.items(), key=lambda kv: -sum(kv[1].values())):
            top = sorted(stages.items(), key=lambda kv: -kv[1])[:3]
            lines.append(f"| {suite} | {sum(stages.values()):,.0f} | " + ", ".join(f"{m} {s:,.0f}" for m, s in top) + " |")
    return "\n".join(lines) + "\n"


def write(folder: Path, profile: str, suites: dict[str, dict[str, float]] | None = None) -> str:
    """Render `folder`/time.md from the records and `provenance.json` collected there; returns it."""
    provenance_file = folder / "provenance.json"
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
    text = render(profile, per_run(folder), provenance, suites)
    write_text_atomic(folder / TIME_FILE, text)
    return text
