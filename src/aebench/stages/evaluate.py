"""`evaluate-<run>@<seed>`: every metric suite on one trained model (one training seed), written to
`eval/<dataset>/<model>/seed<seed>/metrics.json` (+ plots) and logged to the model's MLflow run and
registered version. A dataset's out-of-distribution companion (`evaluate.ood_companion`) is
another dataset's test split, so evaluation depends on all processed data.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aebench import paths
from aebench.data.parquet import read_split
from aebench.errors import UserError
from aebench.evaluation.context import OodSet
from aebench.evaluation.evaluator import evaluate as run_evaluation
from aebench.models import load_checkpoint
from aebench.plan import (EVALUATE_PARAMS, check_names, check_params_unchanged, param_values, params_for_stage,
                          resolve_model, train_stage)
from aebench.stages import stage_main
from aebench.trackers import open_tracker
from aebench.training import memory_format, resolve_device, split_tensors

log = logging.getLogger(__name__)


def run(dataset: str, model_name: str, seed: int, root: Path | None = None, tracker=None) -> dict:
    """Evaluate one trained model; metrics to eval/<dataset>/<model>/seed<seed>/ and its run in
    the tracker (MLflow unless `tracker` says otherwise: `aebench.trackers`)."""
    root = root or paths.repo_root()
    params = params_for_stage(root)
    check_names(params, dataset, model_name, seed)
    params_at_start = param_values(root, EVALUATE_PARAMS)
    stage = train_stage(f"{dataset}-{model_name}", seed)
    _, _, train_cfg = resolve_model(params, model_name, root / "params.yaml", run=f"{dataset}-{model_name}", seed=seed)
    mdir = paths.model_dir(dataset, model_name, seed, root)
    run_json = mdir / "run.json"
    if not run_json.exists():
        raise UserError(f"{run_json} is missing: run `dvc repro {stage}` first")
    run_info = json.loads(run_json.read_text())
    model, payload = load_checkpoint(mdir / "checkpoint.pt", resolve_device(train_cfg.device))
    model.to(memory_format=memory_format(train_cfg))
    if payload.get("model_name") != model_name:
        raise UserError(f"{mdir / 'checkpoint.pt'} holds model `{payload.get('model_name')}`, not `{model_name}`: "
                        f"rerun `dvc repro {stage}`")
    tracker = tracker or open_tracker(root)  # the store is checked before the evaluation's work
    processed = paths.processed_dir(dataset, root)
    out = paths.eval_dir(dataset, model_name, seed, root)
    ev = params.evaluate
    precision, precision_key = ev.precision_for(train_cfg)
    ood = None
    companion = ev.ood_companion.get(dataset)
    if companion and companion not in params.datasets:
        log.info("OoD detection skipped: %s's companion %s is not in `datasets`", dataset, companion)
    elif companion:
        companion_test = paths.processed_dir(companion, root) / "test.parquet"
        if not companion_test.exists():
            raise UserError(f"{companion_test} is missing: `evaluate.ood_companion` pairs {dataset} with {companion}; "
                            f"add {companion} to `datasets` (and run `dvc repro preprocess@{companion}`) or remove the pair")
        ood = OodSet(companion, split_tensors(read_split(companion_test), model.device)["x"])
    metrics = run_evaluation(model, read_split(processed / "train.parquet"), read_split(processed / "test.parquet"),
                             out, run_info=run_info, history=payload.get("history", []), k=ev.knn_k, seed=ev.seed,
                             max_train_codes=ev.max_train_codes, figure_examples=ev.figure_examples,
                             max_recon=ev.max_recon, ood=ood, joint_probe=payload.get("joint_probe"),
                             cluster_paper_restarts=ev.cluster_paper_restarts,
                             precision=precision, precision_key=precision_key, gw_reference=ev.gw_reference,
                             gw_points=ev.gw_points)
    try:
        check_params_unchanged(root, params_at_start, f"evaluate-{dataset}-{model_name}@{seed}")
    except UserError:
        (out / "metrics.json").unlink(missing_ok=True)  # made with the old values: DVC reruns the stage
        raise
    with tracker.errors(f"logging the metrics of {run_info['run_id']}"):
        tracker.log_evaluation(run_info["run_id"], run_info["registered_name"], run_info["version"], metrics,
                               out / "plots")
    return metrics


def main(argv: list[str] | None = None) -> None:
    stage_main(run, "dataset", "model", "seed", argv=argv)


if __name__ == "__main__":
    main()
