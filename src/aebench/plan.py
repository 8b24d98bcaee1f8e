"""The run plan: params.yaml checked against the dataset and model registries, and the stages it
makes.

`load_params` is `aebench.config.read_params` plus every `model.<name>` section validated by its
type's config class; `resolve_model` gives a run's model config and effective TrainConfig.

Every run trains once per training seed (`seeds`, or the run's own `runs.<run>.seeds`). DVC's
templates can neither filter a list nor cross two of them into named stages, so the per-run
stages are written into dvc.yaml, below its hand-written head, by `python -m aebench.plan`
(`--check` only compares): one `train-<run>` and one `evaluate-<run>` group per run, each a
`matrix` over the seeds read straight from params.yaml (`${seeds}` or `${runs.<run>.seeds}`),
so `dvc exp run -S 'seeds=[0,1,2]'` adds the new seeds' stages with no new plan, and adding a
seed reruns nothing already trained. A model class that declares `needs_diffmap = True` trains
on `data/diffmap/<dataset>`, computed by `diffmap@<dataset>` for those datasets only. Under DVC
(`DVC_STAGE` set) every stage refuses to run when dvc.yaml's runs no longer match params.yaml.
"""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path

import yaml

from aebench.config import Params, model_type_of, read_params, resolve_section
from aebench.data.registry import FRESH, check_image_options, check_options, known_datasets
from aebench.errors import UserError, cli_entry
from aebench.models import config_class, known_types, model_class
from aebench.paths import repo_root

SRC = Path(__file__).resolve().parent  # the aebench package

DVC_FILE = "dvc.yaml"
MARKER = "  # ---- below: written from params.yaml by `python -m aebench.plan`; do not edit ----\n"

# What every train stage depends on besides its dataset and its model's own code
# (`model_sources`): the code of the one training loop, the model registry, the nets and the
# registration. The plumbing every stage passes through (aebench.stages, warm, errors, io,
# paths) is no stage's dependency, so changing it reruns nothing.
TRAIN_DEPS = ["stages/train.py", "src/aebench/stages/train.py", "src/aebench/config.py", "src/aebench/plan.py",
              "src/aebench/training.py", "src/aebench/batching.py", "src/aebench/precision.py",
              "src/aebench/distributed.py", "src/aebench/nets.py", "src/aebench/models/__init__.py",
              "src/aebench/models/base.py", "src/aebench/tracking.py", "src/aebench/trackers.py", "src/aebench/serving.py",
              "src/aebench/data/parquet.py"]
PLUMBING = {"aebench", "aebench.errors", "aebench.io", "aebench.paths"}
# Evaluation depends on every processed dataset: a dataset's OoD companion
# (evaluate.ood_companion) is another dataset's test split; the interpolation metric renders lines.
EVALUATE_DEPS = ["stages/evaluate.py", "src/aebench/stages/evaluate.py", "src/aebench/config.py",
                 "src/aebench/plan.py", "src/aebench/evaluation", "src/aebench/figures.py", "src/aebench/metrics",
                 "src/aebench/training.py", "src/aebench/batching.py", "src/aebench/precision.py",
                 "src/aebench/nets.py", "src/aebench/tracking.py", "src/aebench/trackers.py", "src/aebench/data/parquet.py",
                 "src/aebench/data/datasets/lines.py", "src/aebench/models/__init__.py", "src/aebench/models/base.py",
                 "data/processed"]
DIFFMAP_DEPS = ["stages/diffmap.py", "src/aebench/stages/diffmap.py", "src/aebench/figures.py",
                "src/aebench/diffmap.py", "src/aebench/data/parquet.py", "src/aebench/data/embedding.py"]


def load_params(path: str | Path = "params.yaml") -> Params:
    """params.yaml with every key validated, the model sections' own keys included."""
    params = read_params(path)
    for name in params.models:  # resolving checks the type and every model key
        resolve_model(params, name, path)
    for key, run in params.runs.items():
        model_type, _, train = resolve_model(params, run.model, path, run=key)
        if train.fresh_data:
            check_fresh_data(key, run.dataset, model_type, path)
    return params


def check_fresh_data(run: str, dataset: str, model_type: str, path: Path | str) -> None:
    """A UserError when run `run` trains on fresh draws (`train.fresh_data`) that its dataset
    cannot make or its model cannot use."""
    if dataset not in FRESH:
        raise UserError(f"{path}: run `{run}` sets `train.fresh_data`, but dataset `{dataset}` has no generator of "
                        f"fresh samples (those that do: {', '.join(sorted(FRESH))}): set it to false for this run")
    if model_class(model_type).needs_stored_rows:
        raise UserError(f"{path}: run `{run}` sets `train.fresh_data`, but its model (type `{model_type}`) looks its "
                        f"training rows up by index or position, which fresh samples lack: set it to false for this run")


def resolve_model(params: Params, name: str, path: Path | str = "params.yaml", run: str | None = None,
                  seed: int = 0):
    """(model_type, config, train_config) of model `name`: see `aebench.config.resolve_section`."""
    return resolve_section(params, name, config_class, known_types, path, run, seed)


def check_names(params: Params, dataset: str, model: str | None = None, seed: int | None = None) -> None:
    """A UserError unless `dataset` (and the run `<dataset>-<model>`, trained with `seed`) is
    known and planned."""
    if dataset not in known_datasets():
        raise UserError(f"unknown dataset `{dataset}`; known: {', '.join(known_datasets())} (see `datasets` in params.yaml)")
    if dataset not in params.datasets:
        raise UserError(f"dataset `{dataset}` is not listed in `datasets` of params.yaml")
    check_options(dataset, params.data.options_for(dataset).generator_options())
    check_image_options(dataset, params.data.options_for(dataset).image_options())
    run = f"{dataset}-{model}"
    if model is not None and run not in params.runs:
        raise UserError(f"`{run}` is not in `runs` of params.yaml: add "
                        f"`{run}: {{dataset: {dataset}, model: {model}}}` to run it")
    if model is not None and seed is not None and seed not in params.seeds_of(run):
        where = f"runs.{run}.seeds" if params.runs[run].seeds else "seeds"
        raise UserError(f"seed {seed} is not in `{where}` of params.yaml ({params.seeds_of(run)}): add it to train it")


def needs_diffmap(params: Params, model_name: str) -> bool:
    """Whether the model's class declares that it trains on the diffusion map."""
    return model_class(model_type_of(params, model_name)).needs_diffmap


EVALUATE_PARAMS = ["evaluate"]


def train_params(params: Params, run: str) -> list[str]:
    """The params.yaml keys a run's train stage reads, as its DVC stage declares them."""
    spec = params.runs[run]
    return ["train", f"model.{spec.model}"] + [f"runs.{run}.{field}" for field in ("train", "config")
                                               if getattr(spec, field)]


def param_values(root: Path, keys: list[str]) -> dict:
    """The values of dotted `keys` in `<root>/params.yaml` as written (None where absent)."""
    raw = yaml.safe_load((root / "params.yaml").read_text()) or {}
    values = {}
    for key in keys:
        value = raw
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        values[key] = value
    return values


def check_params_unchanged(root: Path, before: dict, stage: str) -> None:
    """A UserError when params.yaml's values of the stage's keys are no longer `before`: DVC
    records the params in dvc.lock when a stage ends, so an edit made while it ran would be
    recorded beside outputs made with the old values, and `dvc status` would call it done."""
    now = param_values(root, list(before))
    changed = [f"{key}{suffix}" for key in before for suffix, old, new in _differences(before[key], now[key])]
    if changed:
        shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        raise UserError(f"params.yaml changed while {stage} ran ({shown}): its outputs were made with the old "
                        f"values, so none were kept; run `dvc repro` again to run it with the new ones")


def _differences(old, new, suffix: str = ""):
    """(dotted suffix, old, new) of each leaf that differs between two params values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new), key=str):
            yield from _differences(old.get(key), new.get(key), f"{suffix}.{key}")
    elif old != new:
        yield suffix, old, new


def _module_file(module: str) -> Path | None:
    base = SRC.parent.joinpath(*module.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imports(path: Path, module: str) -> set[str]:
    """The aebench modules `path` (module `module`) imports, at module level or in functions."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        found |= {name for name in names if name.split(".")[0] == "aebench" and _module_file(name)}
    return found


def model_sources(model_type: str) -> list[str]:
    """The repository paths of the code a model type runs: its own file (or its subpackage's
    folder) and every aebench module it imports, transitively. Its train and evaluate stages
    depend on these instead of the whole models folder, so editing one model (a docstring
    included) reruns only the runs of the models that use that code."""
    start = model_class(model_type).__module__
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module in seen or module in PLUMBING:
            continue
        seen.add(module)
        todo += _imports(_module_file(module), module)
    paths = set()
    for module in seen:
        parts = module.split(".")
        if len(parts) > 3 and parts[1] == "models":  # a model's subpackage is its own: the folder
            paths.add(SRC.joinpath(*parts[1:3]).relative_to(SRC.parent.parent).as_posix())
        else:
            paths.add(_repo_path(module))
    return sorted(paths)


def _repo_path(module: str) -> str:
    """The repository path of aebench module `module`'s file."""
    return _module_file(module).relative_to(SRC.parent.parent).as_posix()


def _with(common: list[str], extra: list[str]) -> list[str]:
    """`common` and the paths of `extra` that no entry of `common` already covers."""
    return common + [p for p in extra if not any(p == c or p.startswith(c + "/") for c in common)]


def train_stage(run: str, seed: int) -> str:
    """The DVC stage that trains `run` with `seed` (for messages that say what to rerun)."""
    return f"train-{run}@{seed}"


def _seed_matrix(params: Params, run: str) -> dict:
    """A run's seeds as DVC reads them from params.yaml, so `dvc exp run -S` can change them."""
    return {"seed": f"${{runs.{run}.seeds}}" if params.runs[run].seeds else "${seeds}"}


def run_stages(params: Params) -> dict:
    """The generated stage groups: `diffmap` for the datasets of runs that need it, and per run
    a `train-<run>` and an `evaluate-<run>` matrix over its seeds."""
    on_diffmap = {key for key, run in params.runs.items() if needs_diffmap(params, run.model)}
    stages: dict = {}
    diffmap_datasets = [d for d in params.datasets if any(params.runs[k].dataset == d for k in on_diffmap)]
    if diffmap_datasets:
        stages["diffmap"] = {"foreach": diffmap_datasets, "do": {
            "cmd": "python stages/diffmap.py --dataset ${item}",
            "deps": DIFFMAP_DEPS + ["data/processed/${item}"], "params": ["diffmap"], "outs": ["data/diffmap/${item}"]}}
    for key, run in params.runs.items():
        args = f"--dataset {run.dataset} --model {run.model} --seed ${{item.seed}}"
        data = [f"data/processed/{run.dataset}"] + ([f"data/diffmap/{run.dataset}"] if key in on_diffmap else [])
        seed_dir = f"{run.dataset}/{run.model}/seed${{item.seed}}"
        code = model_sources(model_type_of(params, run.model))
        fresh = [_repo_path(FRESH[run.dataset].__module__)] if resolve_model(params, run.model, run=key)[2].fresh_data else []
        stages[f"train-{key}"] = {
            "matrix": _seed_matrix(params, key), "cmd": f"python stages/train.py {args}",
            "deps": _with(TRAIN_DEPS, code + fresh) + data, "params": train_params(params, key),
            "outs": [f"models/{seed_dir}"]}
        stages[f"evaluate-{key}"] = {
            "matrix": _seed_matrix(params, key), "cmd": f"python stages/evaluate.py {args}",
            "deps": _with(EVALUATE_DEPS, code) + [f"models/{seed_dir}"], "params": list(EVALUATE_PARAMS),
            "outs": [{f"eval/{seed_dir}/plots": {"cache": False}}],
            "metrics": [{f"eval/{seed_dir}/metrics.json": {"cache": False}}]}
    return stages


def render_runs(params: Params) -> str:
    """dvc.yaml's generated part: the stage groups of `run_stages`, indented under `stages:`."""
    text = yaml.safe_dump(run_stages(params), sort_keys=False, default_flow_style=None, width=110)
    return MARKER + "".join(f"  {line}\n" if line else "\n" for line in text.splitlines())


def _head(path: Path) -> str:
    if not path.is_file():
        raise UserError(f"{path} not found: run from the repository root or set AEBENCH_ROOT")
    text = path.read_text()
    if MARKER not in text:
        raise UserError(f"{path} lacks the line that starts its generated part ({MARKER.strip()}): "
                        f"restore it at the end of `stages:` (`git checkout dvc.yaml`)")
    return text[:text.index(MARKER)]


def check_plan(params: Params, root: Path) -> None:
    """A UserError when `<root>/dvc.yaml`'s generated part is not the one of these params."""
    path = root / DVC_FILE
    if path.read_text() != _head(path) + render_runs(params):
        raise UserError(f"{path} does not match params.yaml (runs, their models or their own seeds changed): run "
                        f"`python -m aebench.plan` (or `make repro`), then `dvc repro` again")


def params_for_stage(root: Path) -> Params:
    """A stage's params: validated, and under DVC checked against dvc.yaml's runs."""
    params = load_params(root / "params.yaml")
    if os.environ.get("DVC_STAGE"):
        check_plan(params, root)
    return params


def write_plan(root: Path) -> Path:
    """Rewrite dvc.yaml's generated part from params.yaml (the file is left alone when it matches)."""
    path = root / DVC_FILE
    text = _head(path) + render_runs(load_params(root / "params.yaml"))
    if path.read_text() != text:
        path.write_text(text)
    return path


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="write (or --check) dvc.yaml's per-run stages from params.yaml")
    parser.add_argument("--check", action="store_true", help="only check that dvc.yaml matches params.yaml")
    args = parser.parse_args(argv)
    root = repo_root()
    if args.check:
        check_plan(load_params(root / "params.yaml"), root)
        print(f"{root / DVC_FILE}: up to date")
    else:
        print(f"{write_plan(root)}: written")


if __name__ == "__main__":
    main()
