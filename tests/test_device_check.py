"""The prepared GPU call (`benchmarks/device_check.py`): the slice it picks from measured step
times, its whole path on a CPU (`--smoke`), and the merge of a device's figures back here."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "device_check.py"


def device_check():
    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_slice_takes_comparisons_in_order_all_seeds_else_one():
    plan = device_check().plan_slice
    slices = [("a", "b"), ("c", "d"), ("e", "b"), ("f",)]
    per_seed = {"a": 10.0, "b": 5.0, "c": 20.0, "d": 20.0, "e": 1.0, "f": 100.0}
    seeds = {k: [0, 1, 2] for k in per_seed}
    # a, b at 3 seeds (45 s); c, d only at one (40 of the 75 left: 3 seeds would be 120);
    # e at 3 seeds, b costed once (3 s); f never fits
    chosen, planned = plan(slices, per_seed, seeds, 120.0)
    assert chosen == {"a": [0, 1, 2], "b": [0, 1, 2], "c": [0], "d": [0], "e": [0, 1, 2]}
    assert planned == pytest.approx(45 + 40 + 3)
    # with 10 s: neither a, b nor c, d fit at one seed; e, b at all three would be 18 s, at one 6 s
    assert plan(slices, per_seed, seeds, 10.0) == ({"e": [0], "b": [0]}, pytest.approx(6.0))
    # a comparison with a run that was not measured (the call ran short) is left out
    assert plan([("a", "z")], per_seed, seeds, 1e9) == ({}, 0.0)


def test_merge_files_a_devices_figures_under_its_machine(tmp_path):
    ours = tmp_path / "results.json"
    ours.write_text(json.dumps({"full_budget": {"cpu-box": {"x": {"sec_per_step": 1.0}}}}))
    theirs = tmp_path / "device.json"
    theirs.write_text(json.dumps({"full_budget": {"gpu-box": {"x": {"sec_per_step": 0.01}}},
                                  "machines": {"gpu-box": {"label": "one GPU"}}}))
    env = {**os.environ, "AEBENCH_BENCH_RESULTS": str(ours)}
    subprocess.run([sys.executable, str(SCRIPT), "--merge", str(theirs)], check=True, env=env, cwd=REPO)
    merged = json.loads(ours.read_text())
    assert merged["full_budget"] == {"cpu-box": {"x": {"sec_per_step": 1.0}}, "gpu-box": {"x": {"sec_per_step": 0.01}}}
    assert merged["machines"]["gpu-box"]["label"] == "one GPU"


@pytest.mark.slow
def test_the_whole_call_runs_on_a_cpu_in_smoke_mode(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "AEBENCH_TRACKER": "files"}
    subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(out), "--budget", "900", "--steps", "1",
                    "--runs", "lines-acai", "lines-paper_ae", "--compile-runs"], check=True, env=env, cwd=REPO)
    results = json.loads((out / "results.json").read_text())
    (timed,) = results["full_budget"].values()
    assert set(timed) == {"lines-acai", "lines-paper_ae"} and all(v["sec_per_step"] > 0 for v in timed.values())
    chosen = json.loads((out / "slice.json").read_text())["chosen"]
    assert chosen == {"lines-acai": [0, 1, 2], "lines-paper_ae": [0, 1, 2]}
    work = out / "work" / "paper-full"
    for model in ("acai", "paper_ae"):
        for seed in (0, 1, 2):
            assert (work / "eval" / "lines" / model / f"seed{seed}" / "metrics.json").is_file()
    assert (out / "paper_scale.tgz").is_file()
