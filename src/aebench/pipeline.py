"""What each DVC stage does, as plain functions of (params, names); stage scripts only parse
arguments and call these. Each stage reads its inputs, writes its outputs atomically, and
turns every mistake a user can make into a one-line `UserError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from aebench import paths
from aebench.config import Params, load_params, resolve_model
from aebench.errors import UserError

log = logging.getLogger(__name__)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("alembic", "mlflow", "urllib3", "great_expectations", "matplotlib", "git", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def params_at(root: Path) -> Params:
    return load_params(root / "params.yaml")


def known_datasets() -> list[str]:
    from aebench.data.sources import REAL
    from aebench.data.synthetic import EMBEDDED

    return sorted({*EMBEDDED, *REAL})


def _check_names(params: Params, dataset: str, model: str | None = None) -> None:
    from aebench.data.sources import check_image_options
    from aebench.data.synthetic import check_options

    if dataset not in known_datasets():
        raise UserError(f"unknown dataset `{dataset}`; known: {', '.join(known_datasets())} (see `datasets` in params.yaml)")
    if dataset not in params.datasets:
        raise UserError(f"dataset `{dataset}` is not listed in `datasets` of params.yaml")
    check_options(dataset, params.data.options_for(dataset).generator_options())
    check_image_options(dataset, params.data.options_for(dataset).image_options())
    if model is not None and f"{dataset}-{model}" not in params.runs:
        raise UserError(f"`{dataset}-{model}` is not in `runs` of params.yaml: add "
                        f"`{dataset}-{model}: {{dataset: {dataset}, model: {model}}}` to run it")


def download(dataset: str, root: Path | None = None) -> Path:
    """Embedded datasets are generated; real ones come through `data.mirror` or the official sources."""
    from aebench.data.raw import save_raw
    from aebench.data.sources import load_real
    from aebench.data.synthetic import EMBEDDED, generate

    root = root or paths.repo_root()
    params = params_at(root)
    _check_names(params, dataset)
    out = paths.raw_dir(dataset, root)
    t0 = time.perf_counter()
    if dataset in EMBEDDED:
        options = params.data.options_for(dataset)
        raw = generate(dataset, options.n, params.data.seed, options.generator_options(), where=str(root / "params.yaml"))
    else:
        mirror = params.data.mirror_for(dataset)
        if mirror and "://" not in mirror and not Path(mirror).is_absolute():
            mirror = str((root / mirror).resolve())
        # A real dataset is cut to `data.options.<dataset>.n` only where params.yaml sets it.
        options = params.data.options_for(dataset)
        n = options.n if "n" in options.model_fields_set else None
        raw = load_real(dataset, out / "files", mirror, n=n, seed=params.data.seed, **options.image_options())
    save_raw(raw, out)
    log.info("%s: %d items %s written to %s in %.1fs", dataset, len(raw), tuple(raw.x.shape[1:]), out, time.perf_counter() - t0)
    return out


def preprocess(dataset: str, root: Path | None = None) -> Path:
    from aebench.data.expectations import validate_or_raise
    from aebench.data.parquet import read_split, write_processed
    from aebench.data.raw import load_raw

    root = root or paths.repo_root()
    params = params_at(root)
    _check_names(params, dataset)
    raw = load_raw(paths.raw_dir(dataset, root))
    out = paths.processed_dir(dataset, root)
    options = params.data.options_for(dataset)
    write_processed(raw, dataset, out, seed=params.data.seed, val_fraction=params.data.val_fraction,
                    test_fraction=params.data.test_fraction, group_factor=options.group_factor)
    splits = {name: read_split(out / f"{name}.parquet") for name in ("train", "val", "test")}
    first = splits["train"]
    validate_or_raise(splits, kind=first.kind, shape=first.shape, n_classes=first.n_classes,
                      balance_tolerance=params.data.balance_tolerance, report_path=out / "validation.json")
    log.info("%s: splits %s validated", dataset, {k: len(v.index) for k, v in splits.items()})
    return out


def _fingerprint(**parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train(dataset: str, model_name: str, root: Path | None = None) -> dict:
    """Train one model, checkpoint it, register its encoder in MLflow, write run.json."""
    import numpy as np

    from aebench import distributed, tracking
    from aebench.data.parquet import data_hash, read_split
    from aebench.io import atomic_path, write_json_atomic
    from aebench.models import build_model, checkpoint_payload
    from aebench.models.base import DataInfo
    from aebench.training import discard_resume, load_resume, resolve_device, split_tensors
    from aebench.training import train as run_training

    import torch

    root = root or paths.repo_root()
    params = params_at(root)
    _check_names(params, dataset, model_name)
    model_type, config, train_cfg = resolve_model(params, model_name, root / "params.yaml",
                                                  run=f"{dataset}-{model_name}")
    processed = paths.processed_dir(dataset, root)
    train_split = read_split(processed / "train.parquet")
    val_split = read_split(processed / "val.parquet")
    if len(train_split.index) < train_cfg.batch_size:
        raise UserError(f"dataset `{dataset}` has {len(train_split.index)} training rows, fewer than "
                        f"`train.batch_size` = {train_cfg.batch_size}: lower the batch size or use more data")
    info = DataInfo(shape=tuple(train_split.shape), kind=train_split.kind, n_classes=train_split.n_classes,
                    n_train=len(train_split.index))
    device = resolve_device(train_cfg.device)
    torch.manual_seed(train_cfg.seed)
    model = build_model(model_type, config, info)
    inputs = model.prepare(dataset, root)  # a digest of the model's auxiliary inputs, "" if none
    dhash = data_hash(processed)
    fingerprint = _fingerprint(dataset=dataset, model=model_name, type=model_type, config=config.model_dump(),
                               train=train_cfg.model_dump(), data=dhash, inputs=inputs)
    resume_path = paths.resume_dir(root) / f"{dataset}-{model_name}.pt"
    previous = load_resume(resume_path, fingerprint)

    distributed.init(device)
    if not distributed.is_main():  # other ranks only train; rank 0 logs, saves and registers
        try:
            run_training(model, split_tensors(train_split, device), split_tensors(val_split, device), train_cfg,
                         resume_path=resume_path, fingerprint=fingerprint)
        finally:
            distributed.shutdown()
        return {}
    client = tracking.client(root)
    run_id = tracking.start_run(
        client, dataset, model_name,
        tags={"model_type": model_type, "git_commit": tracking.git_commit(root), "data_hash": dhash},
        params=tracking.flatten("", {"model": config.model_dump(), "train": train_cfg.model_dump(),
                                     "model_type": model_type, "dataset": dataset}),
        run_id=(previous or {}).get("meta", {}).get("run_id"), root=root,
    )
    log.info("training %s on %s (%s, %d params) on %s; MLflow run %s", model_name, dataset, model_type,
             sum(p.numel() for p in model.parameters()), device, run_id)
    step_logger = tracking.RunLogger(client, run_id, background=True)
    try:
        result = run_training(model, split_tensors(train_split, device), split_tensors(val_split, device), train_cfg,
                              resume_path=resume_path, fingerprint=fingerprint, resume_meta={"run_id": run_id},
                              log_fn=step_logger)
    except BaseException:
        step_logger.flush()
        tracking.finish_run(client, run_id, "FAILED")
        raise
    finally:
        distributed.shutdown()
    step_logger.flush()
    model.cpu()
    out = paths.model_dir(dataset, model_name, root)
    checkpoint = out / "checkpoint.pt"
    with atomic_path(checkpoint) as tmp:
        torch.save(checkpoint_payload(model, model_name, history=result.history, fingerprint=fingerprint,
                                      joint_probe=result.probe_state), tmp)
    example = split_tensors(read_split(processed / "test.parquet"))["x"][:4]
    with torch.no_grad():
        codes = model.encode(example).numpy()
    name, version = tracking.register_encoder(run_id, dataset, model_name, checkpoint, example.numpy(), codes)
    tracking.describe(client, run_id, name, version, dataset, model_name, model_type, config.model_dump(),
                      (type(model).__doc__ or "").strip())
    summary = {"best_val_loss": result.best_val_loss, "train_seconds": result.train_seconds,
               "train_samples_per_s": result.samples_per_s, "epochs_run": result.epochs_run}
    tracking.RunLogger(client, run_id)({k: float(v) for k, v in summary.items()}, result.epochs_run)
    run_info = {
        "run_id": run_id, "experiment": dataset, "registered_name": name, "version": version,
        "model_type": model_type, "git_commit": tracking.git_commit(root), "data_hash": dhash,
        "train_seconds": result.train_seconds, "samples_per_s": result.samples_per_s,
        "epochs": result.epochs_run, "steps": result.steps, "samples_seen": result.samples_seen,
        "batch_size": train_cfg.batch_size, "precision": result.precision, "best_val_loss": result.best_val_loss,
        "stopped_early": result.stopped_early,
        "resumed_from_epoch": result.resumed_from_epoch, "tracking_uri": tracking.tracking_uri(root),
        "device": str(device), "n_parameters": int(sum(p.numel() for p in model.parameters())),
        "latent_dim": int(np.asarray(codes).shape[1]),
    }
    write_json_atomic(out / "run.json", run_info)
    tracking.finish_run(client, run_id)
    discard_resume(resume_path)
    log.info("%s-%s: %d epochs, %.0f samples/s, registered %s v%s", dataset, model_name, result.epochs_run,
             result.samples_per_s, name, version)
    return run_info


def evaluate(dataset: str, model_name: str, root: Path | None = None) -> dict:
    from aebench import tracking
    from aebench.data.parquet import read_split
    from aebench.evaluate import evaluate as run_evaluation
    from aebench.models import load_checkpoint
    from aebench.training import memory_format, resolve_device

    root = root or paths.repo_root()
    params = params_at(root)
    _check_names(params, dataset, model_name)
    _, _, train_cfg = resolve_model(params, model_name, root / "params.yaml", run=f"{dataset}-{model_name}")
    mdir = paths.model_dir(dataset, model_name, root)
    run_json = mdir / "run.json"
    if not run_json.exists():
        raise UserError(f"{run_json} is missing: run `dvc repro train@{dataset}-{model_name}` first")
    run_info = json.loads(run_json.read_text())
    model, payload = load_checkpoint(mdir / "checkpoint.pt", resolve_device(train_cfg.device))
    model.to(memory_format=memory_format(train_cfg))
    if payload.get("model_name") != model_name:
        raise UserError(f"{mdir / 'checkpoint.pt'} holds model `{payload.get('model_name')}`, not `{model_name}`: "
                        f"rerun `dvc repro train@{dataset}-{model_name}`")
    processed = paths.processed_dir(dataset, root)
    out = paths.eval_dir(dataset, model_name, root)
    ev = params.evaluate
    precision, precision_key = ev.precision_for(train_cfg)
    extra = {}
    companion = ev.ood_companion.get(dataset)
    if companion and companion not in params.datasets:
        log.info("OoD detection skipped: %s's companion %s is not in `datasets`", dataset, companion)
    elif companion:
        companion_test = paths.processed_dir(companion, root) / "test.parquet"
        if not companion_test.exists():
            raise UserError(f"{companion_test} is missing: `evaluate.ood_companion` pairs {dataset} with {companion}; "
                            f"add {companion} to `datasets` (and run `dvc repro preprocess@{companion}`) or remove the pair")
        from aebench.training import split_tensors

        extra = {"ood_x": split_tensors(read_split(companion_test), model.device)["x"], "ood_name": companion}
    if payload.get("joint_probe") is not None:  # trained with `train.joint_probe`
        extra["joint_probe"] = payload["joint_probe"]
    metrics = run_evaluation(model, read_split(processed / "train.parquet"), read_split(processed / "test.parquet"),
                             out, run_info=run_info, history=payload.get("history", []), k=ev.knn_k, seed=ev.seed,
                             max_train_codes=ev.max_train_codes, figure_examples=ev.figure_examples,
                             max_recon=ev.max_recon, extra=extra, cluster_paper_restarts=ev.cluster_paper_restarts,
                             precision=precision, precision_key=precision_key, gw_reference=ev.gw_reference,
                             gw_points=ev.gw_points)
    client = tracking.client(root)
    tracking.RunLogger(client, run_info["run_id"])(metrics, 0)
    client.log_artifacts(run_info["run_id"], str(out / "plots"), "plots")
    tracking.tag_version(client, run_info["registered_name"], run_info["version"], metrics)
    return metrics


def report(root: Path | None = None) -> tuple[Path, Path]:
    from aebench.report.build import build_report

    root = root or paths.repo_root()
    params_at(root)
    html, markdown = build_report(root)
    log.info("report: %s and %s", html, markdown)
    return html, markdown
