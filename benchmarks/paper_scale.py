"""Run a profile where DVC or MLflow are not installed (a GPU lease with torch and the scientific
stack only): the pipeline's own stage functions in DVC's order, on a workspace of its own.

    python benchmarks/paper_scale.py profiles/paper-scale-acn.yaml [...] --mirror ../shared/data \\
        --out /tmp/paper_scale [--runs NAME ...] [--smoke] [--bundle DIR]

Per profile, `OUT/<profile>/` becomes a workspace like a checkout's: its params.yaml is the
profile (the mirror made absolute), then `download`, `preprocess` (great-expectations where it is
installed, else the row checks every reader applies, as validation.json says), `diffmap` where a
run needs it, `train` and `evaluate` per run and seed, and `report`: the same functions `dvc repro`
runs, so the numbers are the pipeline's. Runs are recorded by `aebench.trackers`: MLflow when it
is installed, else plain files under `OUT/<profile>/tracking/`; every run.json carries the git
commit and a digest of the code (`code_digest`), which names the code where git's metadata does
not travel. The same workspace run again resumes: finished runs are kept (`--runs` picks some).

`--smoke` checks the whole path on a CPU in minutes: real datasets cut to 500 rows, one step
per run, small evaluation subsets, ACN's sampling chains cut to one decode; full-size models.
`--bundle DIR` writes `DIR/paper_scale.tgz`: each workspace without checkpoints and raw data.
Exit status: 0 when every selected run finished, 2 for a user error (one line naming it).
"""

from __future__ import annotations

import argparse
import tarfile
from pathlib import Path

import yaml

from aebench.config import model_type_of
from aebench.data.embedding import INFO_FILE
from aebench.data.registry import EMBEDDED
from aebench.errors import UserError, cli_entry, setup_logging
from aebench.models import config_class
from aebench.plan import load_params, needs_diffmap

SMOKE_N = 500
SMOKE_TRAIN = {"epochs": 1, "max_steps_per_epoch": 1}
SMOKE_EVAL = {"max_train_codes": 300, "max_recon": 2, "figure_examples": 1, "gw_points": 2, "cluster_paper_restarts": 0}
SMOKE_MODEL = {"daydream_steps": 1}  # where a model's config has the field (ACN's sampling chains)
LEFT_OUT = ("checkpoint.pt", "raw.npz", ".parquet", ".pt")  # what a bundle leaves behind


def workspace_params(profile: Path, mirror: str | None, smoke: bool) -> dict:
    """The profile as the workspace's params.yaml: validated, the mirror absolute, and cut down
    for --smoke."""
    checked = load_params(profile)  # every key checked; an error names the file and the dotted key
    params = yaml.safe_load(profile.read_text(encoding="utf-8"))
    if mirror:
        params.setdefault("data", {})["mirror"] = mirror if "://" in mirror else str(Path(mirror).resolve())
    if not smoke:
        return params
    options = params["data"].setdefault("options", {})
    for dataset in checked.datasets:
        if dataset not in EMBEDDED:  # a real dataset
            own = options.setdefault(dataset, {}) or {}
            options[dataset] = own
            own["n"] = min(own.get("n", SMOKE_N), SMOKE_N)
    params.setdefault("train", {}).update(SMOKE_TRAIN)
    for run in params["runs"].values():
        if run.get("train"):
            run["train"].update(SMOKE_TRAIN)
    params.setdefault("evaluate", {}).update(SMOKE_EVAL)
    for name in {run["model"] for run in params["runs"].values()}:
        fields = config_class(model_type_of(checked, name)).model_fields
        params["model"].setdefault(name, {}).update({k: v for k, v in SMOKE_MODEL.items() if k in fields})
    return params


def prepare(root: Path, selected: list[str] | None):
    """(params, runs `selected` names: run keys or models, None for all), their datasets (and
    OoD companions) downloaded and preprocessed, their diffusion maps made, where missing."""
    from aebench.stages import diffmap, download, preprocess

    params = load_params(root / "params.yaml")
    runs = [k for k, r in params.runs.items() if not selected or k in selected or r.model in selected]
    if selected and not runs:
        raise UserError(f"--runs {' '.join(selected)} matches none of {', '.join(params.runs)} (a run key or a model)")
    used = {params.runs[k].dataset for k in runs}
    for dataset in [d for d in params.datasets if d in used | {params.evaluate.ood_companion.get(u) for u in used}]:
        if not (root / "data" / "processed" / dataset / "validation.json").is_file():
            download.run(dataset, root)
            preprocess.run(dataset, root)
    for dataset in sorted({params.runs[k].dataset for k in runs if needs_diffmap(params, params.runs[k].model)}):
        if not (root / "data" / "diffmap" / dataset / INFO_FILE).is_file():
            diffmap.run(dataset, root)
    return params, runs


def run_workspace(root: Path, selected: list[str] | None, seeds: list[int] | None = None) -> list[str]:
    """`dvc repro` without DVC: the plan's stage functions in order (`seeds`: only these); the runs."""
    from aebench.stages import evaluate, report, train
    from aebench.trackers import open_tracker

    params, runs = prepare(root, selected)
    tracker = open_tracker(root)
    for key in runs:
        run = params.runs[key]
        for seed in [s for s in params.seeds_of(key) if seeds is None or s in seeds]:
            if not (root / "eval" / run.dataset / run.model / f"seed{seed}" / "metrics.json").is_file():
                train.run(run.dataset, run.model, seed, root, tracker=tracker)
                evaluate.run(run.dataset, run.model, seed, root, tracker=tracker)
    report.run(root)
    return runs


def make_workspace(profile: Path, out: Path, mirror: str | None, smoke: bool = False) -> Path:
    """`out/<profile>/`, its params.yaml the profile (see `workspace_params`)."""
    if not profile.is_file():
        raise UserError(f"{profile}: no such profile file (profiles are profiles/<name>.yaml)")
    root = out / profile.stem
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(workspace_params(profile, mirror, smoke), sort_keys=False))
    return root


def bundle(roots: list[Path], target: Path) -> Path:
    """One .tgz of the workspaces' small files (metrics, run.json, reports, tracking)."""
    target.mkdir(parents=True, exist_ok=True)
    path = target / "paper_scale.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for root in roots:
            for file in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(LEFT_OUT)):
                tar.add(file, arcname=str(file.relative_to(root.parent)))
    return path


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--mirror", help="the folder (or URL) holding one sub-folder per real dataset")
    parser.add_argument("--out", type=Path, required=True, help="one workspace per profile is made here")
    parser.add_argument("--runs", nargs="*", help="run keys or model names (default: every run)")
    parser.add_argument("--smoke", action="store_true", help="the whole path in minutes on a CPU")
    parser.add_argument("--bundle", type=Path, help="write paper_scale.tgz of the results here")
    args = parser.parse_args(argv)
    setup_logging()
    roots = [make_workspace(profile, args.out, args.mirror, args.smoke) for profile in args.profiles]
    for root in roots:
        run_workspace(root, args.runs)
        print(f"{root.name}: {root / 'reports' / 'summary.md'}")
    if args.bundle:
        print(f"bundle: {bundle(roots, args.bundle)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
