"""The run plan: params.yaml checked against the dataset and model registries, and the stages it
makes.

`load_params` is `aebench.config.read_params` plus every `model.<name>` section validated by its
type's config class; `resolve_model` gives a run's model config and effective TrainConfig.

dvc.yaml reads `plan.yaml` (written by `python -m aebench.plan`, checked by `--check`) as
variables, because DVC's templates cannot filter a list: a model class that declares
`needs_diffmap = True` trains in a `train_on_diffmap@<run>` stage that depends on
`diffmap@<dataset>`, every other run in a `train@<run>` stage that does not, and the diffusion
map is computed only for the datasets such runs use. Under DVC (`DVC_STAGE` set) every stage
refuses to run when plan.yaml no longer matches params.yaml.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import yaml

from aebench.config import Params, model_type_of, read_params, resolve_section
from aebench.data.registry import check_image_options, check_options, known_datasets
from aebench.errors import UserError, cli_entry
from aebench.models import config_class, known_types, model_class
from aebench.paths import repo_root

PLAN_FILE = "plan.yaml"
PLAN_HEADER = """\
# Generated from params.yaml and the model registry by `python -m aebench.plan` (`make repro`
# runs it); do not edit. dvc.yaml reads it: runs whose model declares `needs_diffmap` train in
# train_on_diffmap@<run>, which depends on diffmap@<dataset>; the others in train@<run>.
"""


def load_params(path: str | Path = "params.yaml") -> Params:
    """params.yaml with every key validated, the model sections' own keys included."""
    params = read_params(path)
    for name in params.models:  # resolving checks the type and every model key
        resolve_model(params, name, path)
    for key, run in params.runs.items():
        resolve_model(params, run.model, path, run=key)
    return params


def resolve_model(params: Params, name: str, path: Path | str = "params.yaml", run: str | None = None):
    """(model_type, config, train_config) of model `name`: see `aebench.config.resolve_section`."""
    return resolve_section(params, name, config_class, known_types, path, run)


def check_names(params: Params, dataset: str, model: str | None = None) -> None:
    """A UserError unless `dataset` (and the run `<dataset>-<model>`) is known and planned."""
    if dataset not in known_datasets():
        raise UserError(f"unknown dataset `{dataset}`; known: {', '.join(known_datasets())} (see `datasets` in params.yaml)")
    if dataset not in params.datasets:
        raise UserError(f"dataset `{dataset}` is not listed in `datasets` of params.yaml")
    check_options(dataset, params.data.options_for(dataset).generator_options())
    check_image_options(dataset, params.data.options_for(dataset).image_options())
    if model is not None and f"{dataset}-{model}" not in params.runs:
        raise UserError(f"`{dataset}-{model}` is not in `runs` of params.yaml: add "
                        f"`{dataset}-{model}: {{dataset: {dataset}, model: {model}}}` to run it")


def needs_diffmap(params: Params, model_name: str) -> bool:
    """Whether the model's class declares that it trains on the diffusion map."""
    return model_class(model_type_of(params, model_name)).needs_diffmap


def train_stage(params: Params, run: str) -> str:
    """The DVC stage that trains `run` (for error messages that say what to rerun)."""
    group = "train_on_diffmap" if needs_diffmap(params, params.runs[run].model) else "train"
    return f"{group}@{run}"


def stage_plan(params: Params) -> dict:
    """The variables dvc.yaml reads from plan.yaml."""
    runs = {key: {"dataset": run.dataset, "model": run.model} for key, run in params.runs.items()}
    on_diffmap = {key: run for key, run in runs.items() if needs_diffmap(params, run["model"])}
    return {
        "train_runs": {key: run for key, run in runs.items() if key not in on_diffmap},
        "train_on_diffmap_runs": on_diffmap,
        "diffmap_datasets": [d for d in params.datasets if any(r["dataset"] == d for r in on_diffmap.values())],
    }


def render_plan(params: Params) -> str:
    return PLAN_HEADER + yaml.safe_dump(stage_plan(params), sort_keys=False, default_flow_style=None, width=100)


def check_plan(params: Params, root: Path) -> None:
    """A UserError when `<root>/plan.yaml` is not the plan of these params."""
    path = root / PLAN_FILE
    if not path.exists() or path.read_text() != render_plan(params):
        raise UserError(f"{path} does not match params.yaml (runs or their models changed): run "
                        f"`python -m aebench.plan` (or `make repro`), then `dvc repro` again")


def params_for_stage(root: Path) -> Params:
    """A stage's params: validated, and under DVC checked against plan.yaml."""
    params = load_params(root / "params.yaml")
    if os.environ.get("DVC_STAGE"):
        check_plan(params, root)
    return params


def write_plan(root: Path) -> Path:
    path = root / PLAN_FILE
    text = render_plan(load_params(root / "params.yaml"))
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


@cli_entry
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="write (or --check) plan.yaml, the stage lists dvc.yaml reads")
    parser.add_argument("--check", action="store_true", help="only check that plan.yaml matches params.yaml")
    args = parser.parse_args(argv)
    root = repo_root()
    if args.check:
        check_plan(load_params(root / "params.yaml"), root)
        print(f"{root / PLAN_FILE}: up to date")
    else:
        print(f"{write_plan(root)}: written")


if __name__ == "__main__":
    main()
