"""The `aebench` command: user-facing verbs outside the DAG.

    aebench promote <dataset> <model> --metric <key>   move alias `champion` if the newest version is better
    aebench models                                     registered models, versions, champions
    aebench ui [--port N]                              the MLflow UI on the project's store
    aebench check                                      validate params.yaml and list what would run
"""

from __future__ import annotations

import argparse
import os
import sys

from aebench.errors import UserError, cli_entry


def _promote(args) -> None:
    from aebench.tracking import promote

    print(promote(args.dataset, args.model, args.metric))


def _models(args) -> None:
    from aebench.tracking import CHAMPION, client

    mlflow_client = client()
    registered = mlflow_client.search_registered_models()
    if not registered:
        print("no registered models yet: run `make repro`")
        return
    for rm in sorted(registered, key=lambda r: r.name):
        versions = mlflow_client.search_model_versions(f"name='{rm.name}'")
        champion = (rm.aliases or {}).get(CHAMPION, "-")
        newest = max((int(v.version) for v in versions), default=0)
        print(f"{rm.name:32s} versions: {len(versions):3d}  newest: {newest:3d}  {CHAMPION}: {champion}")


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
    from aebench.config import load_params, resolve_model
    from aebench.paths import repo_root
    from aebench.pipeline import _check_names

    path = repo_root() / "params.yaml"
    params = load_params(path)
    for dataset in params.datasets:
        _check_names(params, dataset)
    for name in params.models:
        model_type, config, train = resolve_model(params, name, path)
        print(f"{name}: type {model_type}, {config.model_dump()}, epochs {train.epochs}")
    for key in params.runs:
        print(f"run {key}")
    print(f"{path}: valid; {len(params.datasets)} datasets, {len(params.models)} models, {len(params.runs)} runs")


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
    p = sub.add_parser("ui", help="start the MLflow UI on the project's store")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--host", default="127.0.0.1")
    p.set_defaults(func=_ui)
    p = sub.add_parser("check", help="validate params.yaml")
    p.set_defaults(func=_check)
    return parser


@cli_entry
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyError as exc:
        raise UserError(str(exc).strip("'\"")) from None
