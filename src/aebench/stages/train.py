"""`train-<run>@<seed>`: train one model on one dataset with one training seed, checkpoint it
to `models/<dataset>/<model>/seed<seed>/`, register its encoder in MLflow (a version of
`<dataset>-<model>` tagged with the seed) and write `run.json`.

A run's settings travel params.yaml -> `aebench.plan.resolve_model` (the global `train:`
section, then `model.<name>.train`, then `runs.<run>.train`; the seed from the stage) ->
`aebench.training.train`,
which draws each epoch's batches from the model (`model.batches`, default
`aebench.batching.iterate_batches`), or new ones from the dataset's generator under
`train.fresh_data` (`aebench.data.registry.FRESH`). A model that declares `needs_diffmap` loads
`data/diffmap/<dataset>/` in `model.prepare`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from aebench import distributed, paths, tracking
from aebench.data.parquet import data_hash, read_split
from aebench.data.registry import FRESH
from aebench.errors import UserError
from aebench.io import atomic_path, write_json_atomic
from aebench.models import build_model, checkpoint_payload
from aebench.models.base import DataInfo
from aebench.plan import (check_names, check_params_unchanged, param_values, params_for_stage, resolve_model,
                          train_params, train_stage)
from aebench.stages import stage_main
from aebench.trackers import open_tracker
from aebench.training import discard_resume, load_resume, resolve_device, run_fingerprint, split_tensors
from aebench.training import train as run_training

log = logging.getLogger(__name__)


def run(dataset: str, model_name: str, seed: int, root: Path | None = None, tracker=None) -> dict:
    """Train one model with one seed, checkpoint it, register it with the tracker (MLflow unless
    `tracker` says otherwise: `aebench.trackers`), write run.json."""
    root = root or paths.repo_root()
    params = params_for_stage(root)
    check_names(params, dataset, model_name, seed)
    stage = train_stage(f"{dataset}-{model_name}", seed)
    params_at_start = param_values(root, train_params(params, f"{dataset}-{model_name}"))
    model_type, config, train_cfg = resolve_model(params, model_name, root / "params.yaml",
                                                  run=f"{dataset}-{model_name}", seed=seed)
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
    fingerprint = run_fingerprint(dataset=dataset, model=model_name, type=model_type, config=config.model_dump(),
                               train=train_cfg.model_dump(), data=dhash, inputs=inputs)
    resume_path = paths.resume_dir(root) / f"{dataset}-{model_name}-{paths.seed_folder(seed)}.pt"
    previous = load_resume(resume_path, fingerprint)
    fresh = FRESH[dataset] if train_cfg.fresh_data else None  # load_params checked that it exists

    distributed.init(device)
    if not distributed.is_main():  # other ranks only train; rank 0 logs, saves and registers
        try:
            run_training(model, split_tensors(train_split, device), split_tensors(val_split, device), train_cfg,
                         resume_path=resume_path, fingerprint=fingerprint, fresh=fresh)
        finally:
            distributed.shutdown()
        return {}
    tracker = tracker or open_tracker(root)  # the store is checked before any training
    with tracker.errors("opening the run"):
        run_id = tracker.start_run(
            dataset, model_name, seed,
            tags={"model_type": model_type, "git_commit": tracking.git_commit(root), "data_hash": dhash},
            params=tracking.flatten("", {"model": config.model_dump(), "train": train_cfg.model_dump(),
                                         "model_type": model_type, "dataset": dataset}),
            run_id=(previous or {}).get("meta", {}).get("run_id"),
        )
        if previous and previous["meta"].get("run_id") == run_id:  # resumed: what a kill kept from the store
            tracker.relog_history(run_id, previous.get("history", []))
    log.info("training %s on %s (%s, %d params) on %s; run %s in %s", model_name, dataset, model_type,
             sum(p.numel() for p in model.parameters()), device, run_id, tracker.uri)
    step_logger = tracker.logger(run_id, background=True)
    try:
        result = run_training(model, split_tensors(train_split, device), split_tensors(val_split, device), train_cfg,
                              resume_path=resume_path, fingerprint=fingerprint, resume_meta={"run_id": run_id},
                              log_fn=step_logger, fresh=fresh)
        check_params_unchanged(root, params_at_start, stage)  # before anything claims these params
        with tracker.errors("storing the run's metrics"):
            step_logger.flush()
        run_info = _save_and_register(root, dataset, model_name, seed, model, model_type, config, train_cfg, result,
                                      tracker, run_id, fingerprint, dhash, device)
    except BaseException:
        tracker.abandon(run_id, step_logger)
        raise
    finally:
        distributed.shutdown()
    discard_resume(resume_path)
    log.info("%s-%s seed %d: %d epochs, %.0f samples/s, registered %s v%s", dataset, model_name, seed,
             result.epochs_run, result.samples_per_s, run_info["registered_name"], run_info["version"])
    return run_info


def _save_and_register(root: Path, dataset: str, model_name: str, seed: int, model, model_type: str, config,
                       train_cfg, result, tracker, run_id: str, fingerprint: str, dhash: str, device) -> dict:
    """Checkpoint, register and record the trained model so that `models/`, run.json and the
    registry agree after any failure: the checkpoint is written to a staging folder first and
    registered from there; only then is the old run.json removed, the checkpoint moved in
    and the new run.json written (a stage killed in between leaves no run.json, and DVC reruns
    it). A version this run registered in a killed earlier attempt is deleted first."""
    out = paths.model_dir(dataset, model_name, seed, root)
    staging = out / ".staging"  # on the output's own disk, so the final move is a rename
    shutil.rmtree(staging, ignore_errors=True)
    model.cpu()
    staged = staging / "checkpoint.pt"  # the registry's artifact keeps this name
    try:
        with atomic_path(staged) as tmp:
            torch.save(checkpoint_payload(model, model_name, history=result.history, fingerprint=fingerprint,
                                          joint_probe=result.probe_state), tmp)
        example = split_tensors(read_split(paths.processed_dir(dataset, root) / "test.parquet"))["x"][:4]
        with torch.no_grad():
            codes = model.encode(example).numpy()
        with tracker.errors("registering the model"):
            tracker.drop_unrecorded_versions(dataset, model_name, run_id)
            name, version = tracker.register(run_id, dataset, model_name, staged, example.numpy(), codes)
        try:
            with tracker.errors(f"describing version {version} of {name}"):
                tracker.describe(run_id, name, version, dataset, model_name, seed, model_type, config.model_dump(),
                                 (type(model).__doc__ or "").strip())
                summary = {"best_val_loss": result.best_val_loss, "train_seconds": result.train_seconds,
                           "train_samples_per_s": result.samples_per_s, "epochs_run": result.epochs_run}
                tracker.logger(run_id)({k: float(v) for k, v in summary.items()}, result.epochs_run)
            run_info = {
                "run_id": run_id, "experiment": dataset, "registered_name": name, "version": version, "seed": seed,
                "model_type": model_type, "git_commit": tracking.git_commit(root),
                "code_digest": tracking.code_digest(), "data_hash": dhash,
                "train_seconds": result.train_seconds, "samples_per_s": result.samples_per_s,
                "epochs": result.epochs_run, "steps": result.steps, "samples_seen": result.samples_seen,
                "batch_size": train_cfg.batch_size, "precision": result.precision,
                "best_val_loss": result.best_val_loss, "stopped_early": result.stopped_early,
                "resumed_from_epoch": result.resumed_from_epoch, "tracking_uri": tracker.uri,
                "device": str(device), "n_parameters": int(sum(p.numel() for p in model.parameters())),
                "latent_dim": int(np.asarray(codes).shape[1]),
            }
            (out / "run.json").unlink(missing_ok=True)
            out.mkdir(parents=True, exist_ok=True)
            os.replace(staged, out / "checkpoint.pt")
            write_json_atomic(out / "run.json", run_info)
            with tracker.errors("closing the run"):
                tracker.finish(run_id)
        except BaseException:
            if not (out / "run.json").exists():  # a version no run.json names is taken back
                with contextlib.suppress(Exception):
                    tracker.drop_unrecorded_versions(dataset, model_name, run_id)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return run_info


def main(argv: list[str] | None = None) -> None:
    stage_main(run, "dataset", "model", "seed", argv=argv)


if __name__ == "__main__":
    main()
