"""The training-throughput benchmark on any machine: it reads what the CPU can do before it
starts, runs only the contenders that can run there and says why it skipped the others,
files each figure under the machine it was measured on as soon as it is measured, and
never sets figures of two machines in one ratio. The capability is faked both ways; the
short end-to-end run trains the real contenders on the embedded digits."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from aebench import machine

REPO = Path(__file__).resolve().parents[1]
AVX2 = {"cpu": "AMD EPYC", "arch": "x86_64", "cores": 2, "vector_flags": ["avx2", "avx"],
        "cpu_native_bf16": False, "gpu": None, "python": "3.11", "torch": torch.__version__}
BF16 = {**AVX2, "vector_flags": ["avx512_bf16", "avx512f", "avx2", "avx"], "cpu_native_bf16": True}


def load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """train_throughput and write_tables writing a results.json of their own."""
    monkeypatch.setenv("AEBENCH_BENCH_RESULTS", str(tmp_path / "results.json"))
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop("common", None)
    yield load("train_throughput"), load("write_tables"), tmp_path / "results.json"
    sys.modules.pop("common", None)


def test_machine_label_and_id_name_the_widest_vector_extension():
    assert machine.label(AVX2) == "x86_64, 2 CPU cores, AMD EPYC (avx2)"
    assert machine.machine_id(AVX2) == "amd-epyc-2c-avx2"
    assert machine.machine_id(BF16) == "amd-epyc-2c-avx512-bf16"
    assert machine.label({**AVX2, "gpu": "NVIDIA H100"}).endswith("(avx2), NVIDIA H100")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse avx avx2 fma\n")
    assert machine.cpu_flags(info) >= {"avx", "avx2"} and machine.cpu_name(info) == "Some CPU"
    assert machine.cpu_flags(tmp_path / "missing") == set()


def test_bf16_contenders_run_only_where_bf16_is_native(bench):
    tt, _, _ = bench
    runnable, skipped = tt.plan_contenders(False, ["avx2", "avx"], have_pythae=True)
    assert runnable == ["bare/fp32", "aebench/fp32", "pythae/fp32"]
    assert set(skipped) == {"bare/bf16", "aebench/bf16"}
    assert "avx2 avx" in skipped["aebench/bf16"] and "emulat" in skipped["aebench/bf16"]
    runnable, skipped = tt.plan_contenders(True, ["avx512_bf16"], have_pythae=False)
    assert runnable == ["bare/fp32", "aebench/fp32", "bare/bf16", "aebench/bf16"]
    assert "pip install pythae" in skipped["pythae/fp32"]


def test_ratios_compare_equal_precisions_only(bench):
    tt, _, _ = bench
    got = tt.ratios({"aebench/fp32": 1300.0, "bare/fp32": 1000.0, "pythae/fp32": 1000.0})
    assert got == {"aebench_vs_bare_fp32": 1.3, "aebench_fp32_vs_pythae_fp32": 1.3}
    got = tt.ratios({"aebench/fp32": 100.0, "bare/fp32": 100.0, "aebench/bf16": 150.0, "bare/bf16": 120.0,
                     "pythae/fp32": 100.0})
    assert got["aebench_vs_bare_bf16"] == 1.25 and got["aebench_bf16_vs_pythae_fp32"] == 1.5
    assert got["aebench_bf16_vs_fp32"] == 1.5


@pytest.mark.parametrize("info", [AVX2, BF16], ids=["avx2", "avx512-bf16"])
def test_a_short_run_files_every_figure_under_its_machine(bench, monkeypatch, info):
    """The script end to end on the embedded digits (one model, one repeat): the faked machine
    decides the contenders; a contender that fails is recorded with its error and the pair's
    other figures are kept; a second machine's figures sit beside the first's, and the tables
    give each machine its own heading."""
    tt, tables, results = bench
    monkeypatch.setattr(machine, "describe", lambda: dict(info))
    monkeypatch.setattr(tt, "resolve", lambda precision, device: torch.float32)
    monkeypatch.setattr(tt, "matmul_ceiling", lambda dtype: 10.0)  # emulated bf16 matmuls take seconds
    real_run = tt.run

    def run(contender, *args):
        if contender.startswith("pythae"):
            raise RuntimeError("pythae broke\nsecond line")
        if contender.endswith("bf16"):
            return 2.0  # the trainer refuses bf16 on this CPU; the fake machine says it has it
        return real_run(contender, *args)

    monkeypatch.setattr(tt, "run", run)
    find_spec = importlib.util.find_spec  # pythae counts as installed: its run fails above instead
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "pythae" else
                        find_spec(name, *a))
    other = {"machines": {"elsewhere-1c-avx": {"label": "elsewhere", "cpu_native_bf16": False}},
             "train_throughput": {"elsewhere-1c-avx": {"digits": {"ae": {"marker": 1}}}}}
    results.write_text(json.dumps(other))
    threads = torch.get_num_threads()
    monkeypatch.setattr(sys, "argv", ["train_throughput", "--datasets", "digits", "--models", "ae", "--repeats", "1"])
    try:
        tt.main()
    finally:
        torch.set_num_threads(threads)
    saved = json.loads(results.read_text())
    key = machine.machine_id(info)
    pair = saved["train_throughput"][key]["digits"]["ae"]
    assert saved["train_throughput"]["elsewhere-1c-avx"]["digits"]["ae"] == {"marker": 1}
    assert saved["machines"][key]["cpu_native_bf16"] is info["cpu_native_bf16"]
    assert pair["samples_per_s"]["aebench/fp32"] > 0 and pair["samples_per_s"]["bare/fp32"] > 0
    assert pair["skipped"]["pythae/fp32"] == "failed: RuntimeError: pythae broke"
    assert "aebench_fp32_vs_pythae_fp32" not in pair["ratios"] and pair["ratios"]["aebench_vs_bare_fp32"] > 0
    assert ("aebench/bf16" in pair["samples_per_s"]) is info["cpu_native_bf16"]
    assert ("bare/bf16" in pair["skipped"]) is not info["cpu_native_bf16"]
    saved["train_throughput"]["elsewhere-1c-avx"]["digits"]["ae"] = {**pair, "samples_per_s": {"aebench/fp32": 1.0}}
    lines = tables.throughput_tables(saved)
    headings = [line for line in lines if line.startswith("### ")]
    assert sorted(headings) == sorted([f"### {machine.label(info)}", "### elsewhere"])
    own = lines[lines.index(f"### {machine.label(info)}"):]
    assert ("aebench bf16" in next(line for line in own if line.startswith("| dataset"))) is info["cpu_native_bf16"]


def test_update_results_stamps_each_key_with_machine_time_and_commit(bench, monkeypatch):
    _, _, results = bench
    import common

    monkeypatch.setattr(machine, "describe", lambda: dict(AVX2))
    common.update_results({"some_seconds": 1.5})
    saved = json.loads(results.read_text())
    assert saved["some_seconds"] == 1.5
    stamp = saved["stamps"]["some_seconds"]
    assert stamp["machine"] == "amd-epyc-2c-avx2" and stamp["commit"] and stamp["recorded"]
    assert saved["machines"]["amd-epyc-2c-avx2"]["label"] == machine.label(AVX2)


def test_the_docs_tables_are_rendered_from_results_json(monkeypatch):
    """docs/benchmarks.md carries no typed throughput or full-budget figure: each block is what
    `benchmarks/write_tables.py` renders from the committed results.json."""
    monkeypatch.delenv("AEBENCH_BENCH_RESULTS", raising=False)
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop("common", None)
    try:
        tables = load("write_tables")
        docs, results = tables.DOCS.read_text(), tables.load_results()
        for name, render in tables.BLOCKS.items():
            begin, end = tables.markers(name)
            block = docs[docs.index(begin):docs.index(end) + len(end)]
            assert block == "\n".join([begin, "", *render(results), end]), \
                f"{name}: run `.venv/bin/python benchmarks/write_tables.py`"
    finally:
        sys.modules.pop("common", None)


def test_claim_budgets_scratch_params_and_a_curve_that_names_its_machine(tmp_path):
    """A budget's scratch root trains the compared runs for its epochs (no early stop) in the
    arithmetic asked for; the curve's files name the machine and arithmetic it came from."""
    import yaml

    from aebench.report.claims import load_claims

    budgets = load("claim_budgets")
    tree = tmp_path / "tree"
    (tree / "data").mkdir(parents=True)
    (tree / "params.yaml").write_text(yaml.safe_dump({"runs": {"lines-acai": {"dataset": "lines", "model": "acai"},
                                                              "lines-vae": {"dataset": "lines", "model": "vae"}}}))
    root = budgets.scratch_root(tree, tmp_path / "base", ["lines-acai"], 8, None, "fp32")
    runs = yaml.safe_load((root / "params.yaml").read_text())["runs"]
    assert runs["lines-acai"]["train"] == {"epochs": 8, "patience": 8, "precision": "fp32"}
    assert "train" not in runs["lines-vae"] and (root / "data").resolve() == (tree / "data").resolve()
    claim = next(c for c in load_claims() if c.id == "acai-interpolation")
    measured = {"machine": "x86_64, 2 CPU cores, a CPU", "precision": "fp32", "date": "2026-12-07"}

    def point(epochs: int, seeds: list[int], where: dict | None = None) -> dict:
        return {"epochs": epochs, "seeds": seeds, "status": "not held",
                "samples_seen": {"acai": 100 * epochs, "paper_ae": 100 * epochs},
                "checks": [{"text": "t", "status": "not held", "left": 0.03 / epochs, "right": 0.02,
                            "threshold": 0.02} for _ in claim.checks], **({"measured": where} if where else {})}

    saved = [point(1, [0]), point(4, [0], measured)]
    points = budgets.merged(saved, [point(4, [0, 1, 2], measured), point(16, [0, 1, 2], measured)])
    assert [(p["epochs"], p["seeds"]) for p in points] == [(1, [0]), (4, [0, 1, 2]), (16, [0, 1, 2])]
    budgets.write(claim, "lines", points, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "acai-interpolation-lines.json").read_text())["points"] == points
    table = (tmp_path / "out" / "acai-interpolation-lines.md").read_text()
    assert "Epochs 4, 16: trained on x86_64, 2 CPU cores, a CPU in fp32 (2026-12-07)." in table
    assert "| 4 | 0, 1, 2 | acai 400" in table and "| 1 | 0 | acai 100" in table
