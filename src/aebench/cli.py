"""The `aebench` command: user-facing verbs outside the DAG.

    aebench promote <dataset> <model> --metric <key>   move alias `champion` if the newest version is better
    aebench models                                     registered models, versions, champions, key metrics
    aebench sample <dataset> <model> [--alias champion] -n 64 -o grid.png   samples of a registered version
    aebench ui [--port N]                              the MLflow UI on the project's store
    aebench check [PARAMS]                             validate params.yaml (or a profile) and list what would run
    aebench profile <name> [--report-only] [--stages T..] run profiles/<name>.yaml as its own DVC workspace, results in results/<name>/
    aebench readme [--check]                           write (or check) README.md's headline table from results/paper/claims.json
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys

from aebench.errors import UserError, cli_entry
from aebench.evaluation.directions import key_metrics


def _promote(args) -> None:
    from aebench.tracking import promote

    print(promote(args.dataset, args.model, args.metric))


def _models(args) -> None:
    from aebench.tracking import CHAMPION, client

    shown = key_metrics()
    mlflow_client = client()
    registered = mlflow_client.search_registered_models()
    if not registered:
        print("no registered models yet: run `make repro`")
        return
    for rm in sorted(registered, key=lambda r: r.name):
        versions = mlflow_client.search_model_versions(f"name='{rm.name}'")
        aliases = rm.aliases or {}
        champion = aliases.get(CHAMPION, "-")
        newest = max(versions, key=lambda v: int(v.version), default=None)
        tags = ", ".join(f"{k}={v}" for k, v in sorted((newest.tags or {}).items()) if k in shown) if newest else ""
        print(f"{rm.name:28s} versions: {len(versions):3d}  newest: {newest.version if newest else '-':>3}  "
              f"{CHAMPION}: {champion:>3}  {tags}")


def _sample(args) -> None:
    """Load a registered version (by alias, or the newest) and write a grid of its samples."""
    from pathlib import Path

    import mlflow
    import torch

    from aebench import figures
    from aebench.models import load_checkpoint
    from aebench.tracking import client, registered_name

    mlflow_client = client()
    name = registered_name(args.dataset, args.model)
    if args.alias:
        try:
            version = mlflow_client.get_model_version_by_alias(name, args.alias).version
        except Exception:
            raise UserError(f"`{name}` has no alias `{args.alias}`: see `aebench models`, or promote a version") from None
    else:
        versions = mlflow_client.search_model_versions(f"name='{name}'")
        if not versions:
            raise UserError(f"no registered model `{name}`: train it first (`dvc repro train-{args.dataset}-{args.model}`)")
        version = max(int(v.version) for v in versions)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}"))
        checkpoint = next(local.rglob("checkpoint.pt"))
    except Exception as exc:  # noqa: BLE001 - a missing folder, a store that lost the files
        source = mlflow_client.get_model_version(name, version).source
        with contextlib.suppress(Exception):  # MLflow 3: the logged model behind the version knows its folder
            source = mlflow_client.get_logged_model(source.rpartition("/")[2]).artifact_location
        reason = " ".join(str(exc).split())[:160] or "no checkpoint.pt among them"
        raise UserError(f"version {version} of `{name}` has lost its files ({reason}; they were at {source}): "
                        f"retrain it (`dvc repro train-{args.dataset}-{args.model}` registers a new version), "
                        f"or pick another with --alias") from None
    model, _ = load_checkpoint(checkpoint)
    samples = model.sample(args.n, torch.Generator().manual_seed(args.seed))
    if samples is None:
        raise UserError(f"model `{args.model}` has no generative process to sample from; pick another model")
    s = samples.detach().cpu().numpy()
    if s.ndim == 4:
        rows = [s[i:i + 8] for i in range(0, len(s), 8)]
        fig = figures.image_grid(rows, [""] * len(rows), f"{name} v{version}: {len(s)} samples")
    else:
        fig = figures.vector_scatter([s], ["samples"], f"{name} v{version}")
    figures.save(fig, Path(args.output))
    print(f"{args.output}: {len(s)} samples of {name} version {version}")


def _ui(args) -> None:
    from aebench.tracking import artifact_root, check_reachable, tracking_uri

    uri = tracking_uri()
    check_reachable(uri)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--port", str(args.port),
           "--host", args.host]
    if uri.startswith("sqlite:"):
        cmd += ["--default-artifact-root", artifact_root()]
    print(f"MLflow UI on http://{args.host}:{args.port} for {uri} (Ctrl-C stops it)")
    os.execv(sys.executable, cmd)


def _check(args) -> None:
    from aebench.config import incomplete_sections
    from aebench.models import config_class
    from aebench.paths import repo_root
    from aebench.plan import check_names, check_plan, load_params, resolve_model

    path = args.params or repo_root() / "params.yaml"
    params = load_params(path)
    for dataset in params.datasets:
        check_names(params, dataset)
    for name in params.models:
        model_type, config, train = resolve_model(params, name, path)
        print(f"{name}: type {model_type}, {config.model_dump()}, epochs {train.epochs}")
    for key, run in params.runs.items():
        _, config, train = resolve_model(params, run.model, path, run=key)
        print(f"run {key}, seeds {params.seeds_of(key)}" + (f": epochs {train.epochs}, max_steps_per_epoch {train.max_steps_per_epoch}" if run.train else "")
              + (f"; {', '.join(f'{k} {getattr(config, k)}' for k in run.config)}" if run.config else ""))
    for warning in incomplete_sections(params, config_class):  # valid, but -S cannot set what is left out
        print(f"{path}: warning: {warning}", file=sys.stderr)
    if not args.params:  # the repository's own params.yaml: dvc.yaml's per-run stages follow it
        check_plan(params, repo_root())
    print(f"{path}: valid; {len(params.datasets)} datasets, {len(params.models)} models, {len(params.runs)} runs")


def _profile(args) -> None:
    from aebench.paths import repo_root
    from aebench.errors import setup_logging
    from aebench.profiles import rerender, run_profile

    setup_logging()
    if args.report_only:
        print(f"results in {rerender(args.name, repo_root())}")
    else:
        print(f"results in {run_profile(args.name, repo_root(), args.stages)}")


def _readme(args) -> None:
    from aebench.paths import repo_root
    from aebench.report.headline import update

    print(update(repo_root(), check=args.check))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aebench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("promote", help="move alias `champion` to the newest version if it is better")
    p.add_argument("dataset")
    p.add_argument("model")
    p.add_argument("--metric", required=True, help="metric key, e.g. knn_acc or recon_mse")
    p.set_defaults(func=_promote)
    p = sub.add_parser("models", help="list registered models")
    p.set_defaults(func=_models)
    p = sub.add_parser("sample", help="write a grid of samples from a registered version")
    p.add_argument("dataset")
    p.add_argument("model")
    p.add_argument("--alias", default=None, help="e.g. champion (default: the newest version)")
    p.add_argument("-n", type=int, default=64)
    p.add_argument("-o", "--output", default="samples.png")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_sample)
    p = sub.add_parser("ui", help="start the MLflow UI on the project's store")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=_ui)
    p = sub.add_parser("check", help="validate params.yaml or a profile")
    p.add_argument("params", nargs="?", default=None, help="a params file (default: params.yaml)")
    p.set_defaults(func=_check)
    p = sub.add_parser("profile", help="run profiles/<name>.yaml as its own DVC workspace; results in results/<name>/")
    p.add_argument("name", help="e.g. paper")
    p.add_argument("--report-only", action="store_true",
                   help="re-render the last run's report with this checkout's report code; nothing retrains")
    p.add_argument("--stages", nargs="+", default=None, metavar="TARGET",
                   help="run only these DVC stages (globs, e.g. 'train-loop-*' 'evaluate-loop-*'), what they need, "
                        "and the report; the run log records them")
    p.set_defaults(func=_profile)
    p = sub.add_parser("readme", help="write README.md's headline table from results/paper/claims.json")
    p.add_argument("--check", action="store_true", help="only check that the README's table matches the results")
    p.set_defaults(func=_readme)
    return parser


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyError as exc:
        raise UserError(str(exc).strip("'\"")) from None
