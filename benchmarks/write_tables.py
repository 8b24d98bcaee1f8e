"""`benchmarks/results.json` as Markdown tables (`benchmarks/results.md`): every figure beside
the peer's figure from the same run and their ratio. Run by `make bench` after the scripts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, RESULTS, update_results  # noqa: E402

PROVENANCE = REPO / "results" / "paper" / "provenance.json"


def paper_profile_seconds() -> dict | None:
    """The full wall time of the committed paper profile: its first `dvc repro` ran every
    stage (later ones only reran what changed), from `results/paper/provenance.json`."""
    if not PROVENANCE.exists():
        return None
    runs = json.loads(PROVENANCE.read_text()).get("runs", [])
    full = max(runs, key=lambda r: r["wall_seconds"], default=None)
    return full and {"seconds": full["wall_seconds"], "commit": full["commit"][:7], "date": full["date"]}


def table(header: list[str], rows: list[list]) -> list[str]:
    def cell(v):
        if v is None:
            return "—"
        return f"{v:,.3g}" if isinstance(v, float) and abs(v) < 100 else (f"{v:,.0f}" if isinstance(v, float) else str(v))

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows), ""]


def main() -> None:
    profile = paper_profile_seconds()
    r = update_results({"paper_profile_seconds": profile}) if profile else json.loads(RESULTS.read_text())
    out = [f"# aebench benchmarks ({r.get('updated', '?')}, {r.get('machine', {}).get('cpus', '?')} CPUs)", ""]
    if "train_samples_per_s" in r:
        out += [f"## Training throughput (samples/s, {r.get('train_threads', 1)} thread; ratio > 1: aebench faster)", ""]
        rows = []
        for ds, per in r["train_samples_per_s"].items():
            for model, ours in per.items():
                rows.append([ds, model, ours, r["bare_samples_per_s"][ds][model], r["pythae_samples_per_s"][ds][model],
                             r["trainer_vs_bare_ratio"][ds][model], r["trainer_vs_pythae_ratio"][ds][model]])
        out += table(["dataset", "model", "aebench", "bare loop", "pythae", "aebench/bare", "aebench/pythae"], rows)
    if "precision_samples_per_s" in r:
        ceiling = r["matmul_ceiling_gflops"]
        prec = r.get("train_precision", {})
        out += ["## fp32 vs bf16 mixed precision (samples/s; GFLOP/s and share of the matmul ceiling)", "",
                f"Ceiling (2048x2048 matmul, same run): fp32 {ceiling['fp32']} GFLOP/s, bf16 {ceiling['bf16']} GFLOP/s. "
                f"`train.precision` {prec.get('configured', '?')} resolves to {prec.get('resolved', '?')} here; "
                "the table above compares aebench at that precision.", ""]
        rows = []
        for ds, per in r["precision_samples_per_s"].items():
            for model, v in per.items():
                g, f = r["train_gflops"][ds][model], r["ceiling_fraction"][ds][model]
                rows.append([ds, model, v["aebench/fp32"], v["aebench/bf16"], r["bf16_vs_fp32_ratio"][ds][model]["aebench"],
                             v["bare/fp32"], v["bare/bf16"], r["bf16_vs_fp32_ratio"][ds][model]["bare"],
                             f"{g['aebench/fp32']:.1f} ({f['aebench/fp32']:.0%})", f"{g['aebench/bf16']:.1f} ({f['aebench/bf16']:.0%})",
                             f"{g['pythae/fp32']:.1f} ({f['pythae/fp32']:.0%})"])
        out += table(["dataset", "model", "aebench fp32", "aebench bf16", "bf16/fp32", "bare fp32", "bare bf16",
                      "bf16/fp32 (bare)", "GFLOP/s aebench fp32", "GFLOP/s aebench bf16", "GFLOP/s pythae"], rows)
    if "paper_profile_seconds" in r:
        p = r["paper_profile_seconds"]
        out += ["## Paper profile", "", f"`make paper` (real MNIST + the papers' other data): {p['seconds']:.0f} s "
                f"at commit {p['commit']} ({p['date']}); goal: under 3,600 s on 2 cores.", ""]
    if "diffmap_seconds" in r:
        sizes = sorted({n for per in r["diffmap_seconds"].values() for n in per}, key=int)
        out += ["## Diffusion maps on MNIST (wall seconds / peak MiB; — = did not finish)", ""]
        rows = [[m, *(f"{r['diffmap_seconds'][m].get(n) or '—'} / {r['diffmap_peak_mb'][m].get(n) or '—'}" for n in sizes)]
                for m in r["diffmap_seconds"]]
        out += table(["method", *sizes], rows)
    if "repro_seconds" in r:
        out += ["## Pipeline", "", f"- `dvc repro` of the default pipeline on a fresh clone: {r['repro_seconds']:.0f} s "
                f"for {r.get('repro_stage_count', '?')} stages", f"- no-op `dvc repro`: {r['noop_repro_seconds']:.1f} s",
                "- interpreter start-up + import: " + ", ".join(f"{k} {v:.2f} s" for k, v in r["import_seconds"].items()), ""]
        kinds: dict[str, list[float]] = {}
        for stage, s in r["stage_seconds"].items():
            kinds.setdefault(stage.split("@")[0], []).append(s)
        ref = r.get("repro_reference", {})
        before = ref.get("stage_kind_seconds", {})
        if ref:
            out += [f"Reference: {ref['label']}: {ref['repro_seconds']:.0f} s, no-op {ref['noop_repro_seconds']:.1f} s."]
            if "import_seconds" in ref:
                out += ["- its imports: " + ", ".join(f"{k} {v:.2f} s" for k, v in ref["import_seconds"].items())]
            out += [""]
        for label, run in (("this run", r), ("the reference", ref)):
            if "canary_seconds" in run:
                c = run["canary_seconds"]
                out += [f"Machine canary ({label}, fixed pure-Python loop): {c['before']} s before, {c['after']} s after."]
        out += [""]
        out += table(["stage kind", "stages", "total s", "mean s", "reference total s", "reference / now"],
                     [[k, len(v), sum(v), sum(v) / len(v), before.get(k), before[k] / sum(v) if k in before else None]
                      for k, v in kinds.items()])
    if "eval_seconds" in r:
        out += [f"## Evaluation suites on 10,000 MNIST test codes (seconds per model, {r.get('eval_threads', 1)} threads)", ""]
        if "eval_canary_seconds" in r:
            c = r["eval_canary_seconds"]
            out += [f"Machine canary (fixed pure-Python loop; 0.42-0.44 s in a fast hour here): {c['before']} s "
                    f"before, {c['after']} s after.", ""]
        first = next(iter(r["eval_suite_seconds"].values()))
        out += table(["model", *first], [[m, *t.values()] for m, t in r["eval_suite_seconds"].items()])
    path = RESULTS.with_suffix(".md")
    path.write_text("\n".join(out))
    print(path.read_text())


if __name__ == "__main__":
    main()
