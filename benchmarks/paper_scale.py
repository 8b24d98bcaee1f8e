"""Run a profile's runs at paper scale without DVC, MLflow or great-expectations.

    python benchmarks/paper_scale.py profiles/paper-scale-acn.yaml profiles/paper-scale-gwae.yaml \\
        --mirror ../shared/data --out /tmp/paper_scale [--bundle DIR] [--deadline-seconds 480] [--runs NAME ...]

Why it exists: the paper-scale comparisons (`profiles/paper-scale-*.yaml`) need an
accelerator, and the machine that has one (a short GPU lease, no network) has torch and the
scientific stack but not the pipeline's tools: no DVC, no MLflow, no great-expectations. This
script runs the same code as the pipeline's stages below those tools, so its numbers are the
pipeline's numbers. The reference path stays `aebench profile <name>` (DVC, MLflow registry,
validated data, the HTML report); use this script where that path cannot run.

Per profile (each a whole params file, validated as `aebench check` does):
- data, as `download@` and `preprocess@` make it: the raw dataset from the mirror through the
  download stage's loader (`aebench.data.registry.load_real`, or `generate` for embedded
  datasets, with the same options, subsample and seed), split by
  `aebench.data.parquet.write_processed` into a scratch folder and read back with `read_split`.
  Left out: the great-expectations validation of the splits, and the raw.npz round trip
  between the two stages (the same arrays are handed over in memory);
- per run, in the profile's order, as the train and evaluate stages do it: `plan.resolve_model`,
  `models.build_model`, `model.prepare`, `training.train`, the checkpoint written and loaded
  back (`checkpoint_payload`, `load_checkpoint`), then `evaluation.evaluator.evaluate` with the
  run's OoD companion (`evaluate.ood_companion`). Left out: MLflow runs, registration and
  logging. Models that train on the diffusion map (DVAE) are refused;
- the claims of `src/aebench/report/claims.yaml`, checked by the report's own code
  (`aebench.report.claims`) on the metrics and budgets of the runs.

Output (`--out OUT`), rewritten after every run so that a timeout keeps all that was done (a
run's files are replaced when it is run or skipped; runs left out by `--runs` keep what an
earlier call wrote, and the summary and claims count them):
    OUT/<profile>/<run>/metrics.json, run.json, plots/     the evaluator's files and the budget
    OUT/<profile>/<run>-<figure>.png                       the figures a reader needs, flat
    OUT/<profile>/summary.json, summary.md, claims.json    every run's status and key metrics; claim rows
and in the bundle folder (`--bundle`, default OUT): `paper_scale.tgz`, all of OUT in one file,
and `<profile>.md`, a copy of each summary.md. A GPU lease brings back only a few files from
a shallow folder, so point `--bundle` there and `--out` elsewhere.

Deadline (`--deadline-seconds N`, counted from the start): before each run its cost is
estimated from a calibration (a few training steps and one decode of a throwaway copy of the
model on the same data and device) times the planned steps, plus an evaluation allowance;
a run whose estimate exceeds the time left is skipped and the reason recorded.

`--smoke` checks the whole path on a CPU: each real dataset cut to a seeded subsample of 500
(`data.options.<dataset>.n`), each run 1 step (`train.epochs: 1`, `max_steps_per_epoch: 1`),
the evaluation on small subsets (`evaluate.max_train_codes: 300`, `max_recon: 2`,
`figure_examples: 1`, `gw_points: 2`), ACN's daydream chains cut to 1 decode
(`daydream_steps: 1`), the calibration 1 step without warm-up (so the run's own step, in
run.json's `sec_per_step`, is the warm one). Models keep their full size, so the seconds per
step are the real ones. Both paper-scale profiles take about 10 minutes on 2 CPU cores: each
sample of the paper-size PixelCNN is 784 passes of overhead-bound small convolutions (about
40 s per decode there, whatever the batch), and an evaluation decodes several times.

Exit status: 0 when every selected run finished or was skipped for the deadline, 1 when a run
failed, 2 for a user error (a wrong profile, key or mirror: one line naming it), 3 when
mlflow, dvc or great_expectations were imported after all.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("aebench") is None:  # a bare checkout: the package is in src/
    sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from aebench.config import EvalConfig, Params, TrainConfig  # noqa: E402
from aebench.data.parquet import data_hash, read_split, write_processed  # noqa: E402
from aebench.data.registry import EMBEDDED, generate, load_real  # noqa: E402
from aebench.errors import UserError  # noqa: E402
from aebench.evaluation.context import OodSet  # noqa: E402
from aebench.evaluation.evaluator import evaluate  # noqa: E402
from aebench.models import build_model, checkpoint_payload, load_checkpoint  # noqa: E402
from aebench.models.base import DataInfo  # noqa: E402
from aebench.plan import check_names, load_params, needs_diffmap, resolve_model  # noqa: E402
from aebench.precision import autocast, resolve as resolve_precision  # noqa: E402
from aebench.training import discard_resume, memory_format, resolve_device, run_fingerprint, split_tensors  # noqa: E402
from aebench.training import train as run_training  # noqa: E402
from aebench import distributed  # noqa: E402

log = logging.getLogger("paper_scale")

FORBIDDEN = ("mlflow", "dvc", "great_expectations")  # the pipeline's tools, absent where this runs
SPLITS = ("train", "val", "test")
FIGURES = ("samples.png", "reconstructions.png", "daydream.png", "roc.png")  # copied flat per run
KEY_METRICS = ("knn_acc_sampled", "knn_acc", "coding_cost_nats", "neg_elbo", "ood_auroc", "ood_auroc_neg_elbo")
TARBALL = "paper_scale.tgz"

# --smoke: full-size models, tiny data, one step, small evaluation subsets
SMOKE_N = 500
SMOKE_TRAIN = {"epochs": 1, "max_steps_per_epoch": 1}
SMOKE_EVAL = {"max_train_codes": 300, "max_recon": 2, "figure_examples": 1, "gw_points": 2, "cluster_paper_restarts": 0}
SMOKE_MODEL = {"daydream_steps": 1}  # set where a model's config has the field (ACN's sampling chains)

# The run-time estimate: calibrated seconds per step x planned steps x TRAIN_OVERHEAD (the
# validation passes, the epoch checkpoints), plus EVAL_BASE_S and EVAL_DECODES decodes
# (an autoregressive decoder's reconstructions, samples, interpolations and daydreams).
TRAIN_OVERHEAD = 1.15
EVAL_BASE_S = 20.0
EVAL_DECODES = 20
CALIBRATION_MAX_S = 30.0


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def write_json(path: Path, data) -> None:
    """Written to a temporary name, then renamed: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=False, default=_json_default) + "\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------- environment


def environment() -> dict:
    env = {
        "python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
        "torch": torch.__version__, "numpy": np.__version__, "cuda_available": torch.cuda.is_available(),
        "torch_cuda": torch.version.cuda, "git_commit": _git_commit(), "source_digest": source_digest(),
    }
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(0)
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def source_digest() -> str:
    """sha256 of src/aebench/**/*.py and claims.yaml: names the code where a copy has no .git."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "src" / "aebench").rglob("*")):
        if path.suffix in (".py", ".yaml") and path.is_file():
            digest.update(f"{path.relative_to(REPO)}\n".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- profiles


@dataclass
class Profile:
    name: str
    path: Path
    params: Params
    mirror: str | None  # the data mirror every real dataset is read from (absolute, or a URL)
    evaluate: EvalConfig
    runs: list[str]  # the selected run keys, in the profile's order
    out: Path
    status: dict[str, dict] = field(default_factory=dict)  # run key -> its record


def load_profile(path: Path, mirror_arg: str | None, selected: list[str] | None, smoke: bool, out: Path) -> Profile:
    """The profile validated as `aebench check` does; the mirror resolved and checked."""
    if not path.is_file():
        raise UserError(f"{path}: no such profile file (profiles are profiles/<name>.yaml)")
    params = load_params(path)  # every key checked; an error names the file and the dotted key
    for dataset in params.datasets:
        check_names(params, dataset)
    mirror = resolve_mirror(params, path, mirror_arg)
    runs = list(params.runs)
    if selected:
        chosen = [k for k in runs if k in selected or params.runs[k].model in selected]
        if not chosen:
            raise UserError(f"{path}: --runs {' '.join(selected)} matches none of its runs "
                            f"({', '.join(runs)}; a run key or a model name)")
        runs = chosen
    for key in runs:
        run = params.runs[key]
        check_names(params, run.dataset, run.model)
        resolve_model(params, run.model, path, run=key)
        if needs_diffmap(params, run.model):
            raise UserError(f"{path}: run `{key}` trains on the diffusion map, which this script does not compute: "
                            f"run it with `aebench profile {path.stem}` or leave it out with --runs")
    ev = params.evaluate
    if smoke:
        ev = EvalConfig.model_validate({**ev.model_dump(), **SMOKE_EVAL})
    return Profile(path.stem, path, params, mirror, ev, runs, out / path.stem)


def resolve_mirror(params: Params, path: Path, mirror_arg: str | None) -> str | None:
    """--mirror (relative to the working directory), else the profile's `data.mirror`
    (relative to the repository root, as `aebench profile` resolves it); then every real
    dataset's folder must exist in it."""
    if mirror_arg is not None:
        mirror, where = mirror_arg, f"--mirror {mirror_arg}"
        base = Path.cwd()
    else:
        mirror, where = params.data.mirror, f"{path}: data.mirror {params.data.mirror}"
        base = REPO
    if mirror and "://" not in mirror:
        folder = Path(mirror).expanduser()
        folder = (folder if folder.is_absolute() else base / folder).resolve()
        if not folder.is_dir():
            raise UserError(f"{where}: {folder} is not a folder (it must hold one sub-folder per dataset, e.g. mnist/, "
                            f"omniglot/): pass --mirror DIR")
        mirror = str(folder)
    for dataset in params.datasets:
        if dataset in EMBEDDED:
            continue
        own = params.data.options_for(dataset).mirror
        source = own or (None if mirror is None else f"{mirror.rstrip('/')}/{dataset}")
        if source is None:
            raise UserError(f"{path}: dataset `{dataset}` needs a mirror (no network here): pass --mirror DIR "
                            f"with a {dataset}/ sub-folder, or set data.mirror")
        if "://" not in source and not Path(source).is_dir():
            key = f"data.options.{dataset}.mirror" if own else where
            raise UserError(f"{key}: {source} is not a folder: the mirror needs a {dataset}/ sub-folder with its files "
                            f"(see /work/shared/data/README.md or docs/datasets.md)")
    return mirror


def train_config(profile: Profile, key: str, smoke: bool):
    run = profile.params.runs[key]
    model_type, config, train_cfg = resolve_model(profile.params, run.model, profile.path, run=key)
    if smoke:
        train_cfg = TrainConfig.model_validate({**train_cfg.model_dump(), **SMOKE_TRAIN})
        cut = {k: v for k, v in SMOKE_MODEL.items() if k in type(config).model_fields}
        if cut:
            config = type(config).model_validate({**config.model_dump(), **cut})
    return model_type, config, train_cfg


# --------------------------------------------------------------------------- data


@dataclass
class Data:
    dataset: str
    folder: Path
    splits: dict
    summary: dict
    seconds: float


class DataCache:
    """Processed datasets in a scratch folder, one per distinct (dataset, options, split)
    setting, so two profiles that read MNIST alike prepare it once."""

    def __init__(self, scratch: Path, smoke: bool):
        self.scratch, self.smoke, self.ready = scratch, smoke, {}

    def get(self, profile: Profile, dataset: str) -> Data:
        params = profile.params
        options = params.data.options_for(dataset)
        if self.smoke and dataset not in EMBEDDED:
            n = min(SMOKE_N, options.n) if "n" in options.model_fields_set else SMOKE_N
            options = type(options).model_validate({**options.model_dump(exclude_unset=True), "n": n})
        setting = {"dataset": dataset, "options": options.model_dump(), "n_set": "n" in options.model_fields_set,
                   "seed": params.data.seed, "val": params.data.val_fraction, "test": params.data.test_fraction,
                   "mirror": profile.mirror}
        tag = hashlib.sha256(json.dumps(setting, sort_keys=True, default=str).encode()).hexdigest()[:10]
        if tag in self.ready:
            return self.ready[tag]
        t0 = time.perf_counter()
        folder = self.scratch / "processed" / f"{dataset}-{tag}"
        raw = self._raw(profile, dataset, options)
        log.info("%s: %d items %s from %s; splitting into %s", dataset, len(raw), tuple(raw.x.shape[1:]),
                 raw.meta.get("mirror", raw.meta.get("source", "?")), folder)
        summary = write_processed(raw, dataset, folder, seed=params.data.seed, val_fraction=params.data.val_fraction,
                                  test_fraction=params.data.test_fraction, group_factor=options.group_factor)
        del raw
        splits = {name: read_split(folder / f"{name}.parquet") for name in SPLITS}
        log.info("%s: splits %s (great-expectations validation skipped: not installed here)", dataset,
                 {k: len(v.index) for k, v in splits.items()})
        data = Data(dataset, folder, splits, summary, time.perf_counter() - t0)
        self.ready[tag] = data
        return data

    def _raw(self, profile: Profile, dataset: str, options):
        """The download stage's call (aebench.stages.download.run), minus writing raw.npz."""
        params = profile.params
        where = str(profile.path)
        if dataset in EMBEDDED:
            return generate(dataset, options.n, params.data.seed, options.generator_options(), where=where)
        mirror = options.mirror or (None if profile.mirror is None else f"{profile.mirror.rstrip('/')}/{dataset}")
        if mirror and "://" not in mirror and not Path(mirror).is_absolute():
            mirror = str((REPO / mirror).resolve())
        n = options.n if "n" in options.model_fields_set else None
        cache = self.scratch / "raw" / dataset / "files"
        return load_real(dataset, cache, mirror, n=n, seed=params.data.seed, **options.image_options())


# --------------------------------------------------------------------------- calibration


def planned_steps(train_cfg: TrainConfig, n_train: int) -> int:
    per_epoch = max(1, n_train // train_cfg.batch_size)
    if train_cfg.max_steps_per_epoch:
        per_epoch = min(per_epoch, train_cfg.max_steps_per_epoch)
    return per_epoch * train_cfg.epochs


def calibrate(model_type: str, config, info: DataInfo, train_cfg: TrainConfig, train_data: dict,
              device: torch.device, eval_dtype: torch.dtype, steps: int, warmup: int) -> dict:
    """Seconds per training step and per decode of a throwaway model built like the run's, on
    the same data and device (the run itself is seeded afresh by the trainer). Timed steps
    stop after CALIBRATION_MAX_S once one is done."""
    devices = [device] if device.type == "cuda" else []
    dtype = resolve_precision(train_cfg.precision, device)
    times: list[float] = []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(train_cfg.seed + 12345)
        model = build_model(model_type, config, info).to(device, memory_format=memory_format(train_cfg)).train()
        optimizers = model.optimizers(train_cfg.lr)
        shuffle = torch.Generator().manual_seed(train_cfg.seed + 12345)
        started = time.perf_counter()
        for i, batch in enumerate(model.batches(train_data, train_cfg.batch_size, shuffle, warmup + steps)):
            sync(device)
            t0 = time.perf_counter()
            with autocast(dtype, device):
                terms = model.train_step(batch, optimizers, i)
            float(terms["loss"])  # the trainer reads every term back each step
            sync(device)
            times.append(time.perf_counter() - t0)
            if len(times) > warmup and time.perf_counter() - started > CALIBRATION_MAX_S:
                break
        model.eval()
        with torch.no_grad(), autocast(eval_dtype, device):
            z = model.encode(train_data["x"][:2])
            sync(device)
            t0 = time.perf_counter()
            model.decode(z)
            sync(device)
            decode_s = time.perf_counter() - t0
    del model, optimizers
    if device.type == "cuda":
        torch.cuda.empty_cache()
    timed = times[warmup:] or times
    return {"warmup_steps": min(warmup, len(times)), "timed_steps": len(timed), "first_step_s": times[0],
            "sec_per_step": statistics.median(timed), "decode_seconds": decode_s}


def estimate_seconds(calibration: dict | None, steps: int) -> float | None:
    if calibration is None:
        return None
    return (calibration["sec_per_step"] * steps * TRAIN_OVERHEAD + EVAL_BASE_S
            + EVAL_DECODES * calibration["decode_seconds"])


def should_skip(estimate: float | None, remaining: float | None) -> str | None:
    """Why a run is skipped under the deadline, or None: skipped when no time is left, or when
    its estimate exceeds the time left (no estimate: it runs while any time is left)."""
    if remaining is None:
        return None
    if remaining <= 0:
        return f"the deadline had passed ({-remaining:.0f} s ago)"
    if estimate is not None and estimate > remaining:
        return f"estimated {estimate:.0f} s, but only {remaining:.0f} s were left before the deadline"
    return None


# --------------------------------------------------------------------------- one run


def clear_run(profile: Profile, key: str) -> None:
    shutil.rmtree(profile.out / key, ignore_errors=True)
    for figure in FIGURES:
        (profile.out / f"{key}-{figure}").unlink(missing_ok=True)


def do_run(profile: Profile, key: str, data: DataCache, args, deadline: float | None, env: dict) -> dict:
    """Train and evaluate one run as the train and evaluate stages do; returns its record."""
    params = profile.params
    run = params.runs[key]
    dataset, model_name = run.dataset, run.model
    model_type, config, train_cfg = train_config(profile, key, args.smoke)
    record = {"run": key, "dataset": dataset, "model": model_name, "model_type": model_type, "status": "running",
              "started": now()}
    clear_run(profile, key)  # an earlier call's files must not stand in for this run's
    remaining = None if deadline is None else deadline - time.monotonic()
    if remaining is not None and remaining <= 0:
        return {**record, "status": "skipped", "reason": should_skip(None, remaining)}

    prepared = data.get(profile, dataset)
    companion = profile.evaluate.ood_companion.get(dataset)
    ood_data = data.get(profile, companion) if companion and companion in params.datasets else None
    if companion and ood_data is None:
        log.info("OoD detection skipped: %s's companion %s is not in `datasets`", dataset, companion)
    train_split, val_split, test_split = (prepared.splits[s] for s in SPLITS)
    if len(train_split.index) < train_cfg.batch_size:
        raise UserError(f"{profile.path}: dataset `{dataset}` has {len(train_split.index)} training rows, fewer than "
                        f"`train.batch_size` = {train_cfg.batch_size}")
    info = DataInfo(shape=tuple(train_split.shape), kind=train_split.kind, n_classes=train_split.n_classes,
                    n_train=len(train_split.index))
    device = resolve_device(train_cfg.device)
    precision, precision_key = profile.evaluate.precision_for(train_cfg)
    eval_dtype = resolve_precision(precision, device, precision_key)
    train_data = split_tensors(train_split, device)
    steps = planned_steps(train_cfg, len(train_split.index))

    calibration = None
    if args.calibrate_steps > 0:
        warmup = 0 if args.smoke else 1
        log.info("%s: calibrating (%d warm-up + up to %d timed steps, one decode) on %s", key, warmup,
                 args.calibrate_steps, device)
        calibration = calibrate(model_type, config, info, train_cfg, train_data, device, eval_dtype,
                                args.calibrate_steps, warmup)
        log.info("%s: %.4g s per step (first %.4g s), %.4g s per decode of 2", key, calibration["sec_per_step"],
                 calibration["first_step_s"], calibration["decode_seconds"])
    estimate = estimate_seconds(calibration, steps)
    remaining = None if deadline is None else deadline - time.monotonic()
    record.update(planned_steps=steps, calibration=calibration, estimate_seconds=estimate)
    reason = should_skip(estimate, remaining)
    if reason:
        del train_data
        return {**record, "status": "skipped", "reason": reason}
    log.info("%s: training %s (%s) on %s: %d steps of %d, estimated %s", key, model_name, model_type, device, steps,
             train_cfg.batch_size, "?" if estimate is None else f"{estimate:.0f} s")

    # -- the train stage (aebench.stages.train.run, minus MLflow) -----------------------------
    run_dir = profile.out / key
    run_dir.mkdir(parents=True, exist_ok=True)
    scratch_run = args.scratch / "models" / profile.name / key
    scratch_run.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(train_cfg.seed)
    model = build_model(model_type, config, info)
    inputs = model.prepare(dataset, args.scratch)  # a digest of the model's auxiliary inputs, "" if none
    dhash = prepared.summary.get("data_hash") or data_hash(prepared.folder)  # write_processed's own data_hash
    fp = run_fingerprint(dataset=dataset, model=model_name, type=model_type, config=config.model_dump(),
                     train=train_cfg.model_dump(), data=dhash, inputs=inputs)
    resume_path = scratch_run / "resume.pt"
    n_parameters = int(sum(p.numel() for p in model.parameters()))
    t0 = time.perf_counter()
    distributed.init(device)
    try:
        result = run_training(model, train_data, split_tensors(val_split, device), train_cfg,
                              resume_path=resume_path, fingerprint=fp)
    finally:
        distributed.shutdown()
    train_wall = time.perf_counter() - t0
    del train_data
    model.cpu()
    checkpoint = scratch_run / "checkpoint.pt"
    torch.save(checkpoint_payload(model, model_name, history=result.history, fingerprint=fp,
                                  joint_probe=result.probe_state), checkpoint)
    example = split_tensors(test_split)["x"][:4]
    with torch.no_grad():
        codes = model.encode(example).numpy()
    del model
    if device.type == "cuda":
        torch.cuda.empty_cache()
    run_info = {
        "model_type": model_type, "dataset": dataset, "model": model_name, "data_hash": dhash,
        "train_seconds": result.train_seconds, "samples_per_s": result.samples_per_s,
        "epochs": result.epochs_run, "steps": result.steps, "samples_seen": result.samples_seen,
        "batch_size": train_cfg.batch_size, "precision": result.precision, "best_val_loss": result.best_val_loss,
        "stopped_early": result.stopped_early, "resumed_from_epoch": result.resumed_from_epoch,
        "device": str(device),
        "device_name": env.get("gpu") if device.type == "cuda" else platform.processor() or "cpu",
        "n_parameters": n_parameters, "latent_dim": int(np.asarray(codes).shape[1]),
        "torch": torch.__version__, "git_commit": env["git_commit"], "source_digest": env["source_digest"],
        "sec_per_step": result.train_seconds / result.steps if result.steps else None,
        "train_wall_seconds": train_wall, "calibration": calibration, "estimate_seconds": estimate,
        "smoke": bool(args.smoke), "tracking": "none (benchmarks/paper_scale.py: no MLflow)",
        "validation": "skipped (benchmarks/paper_scale.py: no great-expectations)",
    }
    write_json(run_dir / "run.json", run_info)
    discard_resume(resume_path)
    log.info("%s: %d steps in %.1f s (%.4g s/step, %s, %d parameters)", key, result.steps, result.train_seconds,
             run_info["sec_per_step"] or float("nan"), result.precision, n_parameters)

    # -- the evaluate stage (aebench.stages.evaluate.run, minus MLflow) -------------------------
    t0 = time.perf_counter()
    model, payload = load_checkpoint(checkpoint, device)
    model.to(memory_format=memory_format(train_cfg))
    ood = None
    if ood_data is not None:
        ood = OodSet(companion, split_tensors(ood_data.splits["test"], model.device)["x"])
    ev = profile.evaluate
    evaluate(model, train_split, test_split, run_dir, run_info=run_info, history=payload.get("history", []),
             k=ev.knn_k, seed=ev.seed, max_train_codes=ev.max_train_codes, figure_examples=ev.figure_examples,
             max_recon=ev.max_recon, ood=ood, joint_probe=payload.get("joint_probe"),
             cluster_paper_restarts=ev.cluster_paper_restarts, precision=precision, precision_key=precision_key,
             gw_reference=ev.gw_reference, gw_points=ev.gw_points)
    eval_wall = time.perf_counter() - t0
    del model, ood
    if device.type == "cuda":
        torch.cuda.empty_cache()
    run_info["eval_wall_seconds"] = eval_wall
    write_json(run_dir / "run.json", run_info)
    for figure in FIGURES:
        source = run_dir / "plots" / figure
        if source.is_file():
            shutil.copyfile(source, profile.out / f"{key}-{figure}")
    return {**record, "status": "done", "train_seconds": result.train_seconds, "eval_seconds": eval_wall,
            "finished": now()}


# --------------------------------------------------------------------------- summaries and claims


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def claim_rows(profile: Profile, data: DataCache) -> tuple[list[dict] | None, list, str | None]:
    """(claims.json rows, the claim objects of this profile's models, error) by the report's
    own claim evaluation over every planned run of the profile (absent ones count as not run)."""
    try:
        from aebench.report.claims import Budget, RunData, claims_json, evaluate_claims, load_claims, read_traits
    except ImportError as exc:  # pragma: no cover - the report needs only pydantic and yaml
        return None, [], f"aebench.report.claims could not be imported: {exc}"
    params = profile.params
    metrics, budgets, traits, n_classes = {}, {}, {}, {}
    for key, run in params.runs.items():
        run_dir = profile.out / key
        metrics[(run.dataset, run.model)] = read_json(run_dir / "metrics.json")
        budgets[(run.dataset, run.model)] = Budget.from_run(read_json(run_dir / "run.json"))
    folders = {d.dataset: d.folder for d in data.ready.values()}
    for dataset in params.datasets:
        folder = folders.get(dataset, profile.out / "no-such-folder")
        traits[dataset], n_classes[dataset] = read_traits(folder, dataset in params.evaluate.ood_companion)
    run_data = RunData(datasets=list(params.datasets), models=list(params.models),
                       seed_metrics={key: {0: m} for key, m in metrics.items()},  # one seed: train.seed 0
                       n_classes=n_classes, traits=traits, budgets=budgets, root=REPO)
    claims = load_claims()
    rows = evaluate_claims(claims, run_data)
    mine = [c for c in claims if set(c.models) <= set(params.models)]
    return claims_json(rows), mine, None


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.5g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def metric_columns(profile: Profile, mine: list, metrics: dict[str, dict]) -> list[str]:
    wanted = list(KEY_METRICS)
    for claim in mine:
        for check in claim.checks:
            wanted += [check.metric, check.right_metric]
    for m in metrics.values():
        wanted += sorted(k for k in (m or {}) if k.startswith("ood_auroc"))
    wanted = list(dict.fromkeys(wanted))
    return [c for c in wanted if any(_finite((m or {}).get(c)) is not None for m in metrics.values())]


def write_summary(profile: Profile, data: DataCache, args, env: dict, started: str) -> str:
    """summary.json, summary.md and claims.json of the profile, from what is on disk."""
    rows, mine, error = claim_rows(profile, data)
    runs = {}
    metrics = {}
    for key in profile.params.runs:
        record = dict(profile.status.get(key, {"status": "not selected" if key not in profile.runs else "pending"}))
        m = read_json(profile.out / key / "metrics.json")
        info = read_json(profile.out / key / "run.json")
        metrics[key] = m
        record["run_json"] = info
        record["metrics"] = m
        runs[key] = record
    columns = metric_columns(profile, mine, metrics)
    ids = {c.id for c in mine}
    relevant = [r for r in (rows or []) if r["claim"] in ids]
    summary = {
        "profile": profile.name, "profile_path": str(profile.path), "script": "benchmarks/paper_scale.py",
        "started": started, "updated": now(), "smoke": bool(args.smoke), "deadline_seconds": args.deadline_seconds,
        "environment": env, "mirror": profile.mirror,
        "skipped_steps": ["great-expectations validation of the splits", "MLflow tracking and registration",
                          "DVC (the stages' code is called directly)",
                          "raw.npz round trip between download and preprocess"],
        "data": {d.dataset: {"folder": str(d.folder), "rows": d.summary.get("rows"), "shape": d.summary.get("shape"),
                             "data_hash": d.summary.get("data_hash"), "seconds": d.seconds}
                 for d in data.ready.values()},
        "key_metrics": columns, "runs": runs, "claims": relevant, "claims_error": error,
    }
    write_json(profile.out / "summary.json", summary)
    if rows is not None:
        write_json(profile.out / "claims.json", rows)
    text = summary_markdown(profile, summary, columns, relevant, error)
    write_text(profile.out / "summary.md", text)
    return text


def summary_markdown(profile: Profile, summary: dict, columns: list[str], relevant: list[dict],
                     error: str | None) -> str:
    env = summary["environment"]
    device = env.get("gpu") or f"CPU ({env.get('cpus')} cores)"
    lines = [
        f"# {profile.name}{' (smoke)' if summary['smoke'] else ''}",
        "",
        f"{profile.path} by benchmarks/paper_scale.py on {device}, torch {env['torch']}, "
        f"code {env.get('git_commit') or 'sha256:' + env['source_digest']}; "
        f"{summary['started']} to {summary['updated']}. "
        "Not done here: " + "; ".join(summary["skipped_steps"]) + ".",
        "",
        "| " + " | ".join(["run", "status", "steps", "samples", "precision", "train s", "s/step", "eval s", *columns])
        + " |",
        "| --- " * (8 + len(columns)) + "|",
    ]
    for key, record in summary["runs"].items():
        info = record.get("run_json") or {}
        m = record.get("metrics") or {}
        status = record.get("status", "?")
        if record.get("reason"):
            status += f": {record['reason']}"
        lines.append("| " + " | ".join([
            key, status, fmt(info.get("steps")), fmt(info.get("samples_seen")), fmt(info.get("precision")),
            fmt(_finite(info.get("train_seconds"))), fmt(_finite(info.get("sec_per_step"))),
            fmt(_finite(info.get("eval_wall_seconds"))), *[fmt(_finite(m.get(c))) for c in columns]]) + " |")
    lines += ["", "## Claims", ""]
    if error:
        lines.append(f"Not evaluated: {error}")
    elif not relevant:
        lines.append("No claim compares only this profile's models.")
    else:
        lines += ["| claim | data | status | checks | budgets |", "| --- | --- | --- | --- | --- |"]
        for row in relevant:
            checks = "; ".join(c["text"] + ("" if c["status"] != "not run" else f" (not run: {c['why']})")
                               for c in row["checks"])
            if row.get("reason"):
                checks = row["reason"]
            lines.append(f"| {row['claim']} | {row['dataset'] or '-'} | {row['status']} | {checks} | "
                         f"{row.get('budget_note') or '-'} |")
    return "\n".join(lines) + "\n"


def write_bundle(profiles: list[Profile], out: Path, bundle: Path) -> None:
    """`<bundle>/paper_scale.tgz` (all of OUT but the bundle's own files) and a copy of each
    summary.md as `<bundle>/<profile>.md`; written to temporary names, then renamed."""
    bundle.mkdir(parents=True, exist_ok=True)
    target = bundle / TARBALL
    tmp = bundle / (TARBALL + ".tmp")
    skip = {target.resolve(), tmp.resolve()}
    with tarfile.open(tmp, "w:gz") as tar:
        for path in sorted(out.rglob("*")):
            if path.is_file() and path.resolve() not in skip and not path.name.endswith(".tmp"):
                tar.add(path, arcname=str(Path("paper_scale") / path.relative_to(out)))
    os.replace(tmp, target)
    for p in profiles:
        summary = p.out / "summary.md"
        if summary.is_file() and bundle.resolve() != p.out.resolve():
            shutil.copyfile(summary, bundle / f"{p.name}.md")


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run profiles' runs without DVC, MLflow or great-expectations (see the module docstring).")
    parser.add_argument("profiles", nargs="+", type=Path, help="profile files (profiles/<name>.yaml), run in order")
    parser.add_argument("--mirror", help="folder (or http URL) with one sub-folder per real dataset "
                                         "(default: the profile's data.mirror, relative to the repository)")
    parser.add_argument("--out", type=Path, required=True, help="output folder: OUT/<profile>/...")
    parser.add_argument("--bundle", type=Path, help="folder for paper_scale.tgz and <profile>.md (default: OUT)")
    parser.add_argument("--deadline-seconds", type=float, help="skip a run whose estimate exceeds the time left")
    parser.add_argument("--runs", nargs="+", metavar="NAME", help="only these runs (run keys or model names)")
    parser.add_argument("--smoke", action="store_true", help="tiny data, one step per run, small evaluation subsets")
    parser.add_argument("--calibrate-steps", type=int, default=None,
                        help="timed calibration steps per run (default 5, --smoke 1; 0: no calibration, no estimate)")
    parser.add_argument("--scratch", type=Path, help="folder for processed data and checkpoints (default: a "
                                                     "temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    if args.calibrate_steps is None:
        args.calibrate_steps = 1 if args.smoke else 5
    return args


def forbidden_loaded() -> list[str]:
    return sorted({m.split(".")[0] for m in sys.modules} & set(FORBIDDEN))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", force=True)
    for noisy in ("matplotlib", "PIL", "numexpr"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    args = parse_args(argv)
    start = time.monotonic()
    deadline = None if args.deadline_seconds is None else start + args.deadline_seconds
    started = now()
    env = environment()
    log.info("paper_scale: %s; torch %s, cuda %s%s; deadline %s", " ".join(str(p) for p in args.profiles),
             env["torch"], env["cuda_available"], f" ({env['gpu']})" if env.get("gpu") else "",
             "none" if deadline is None else f"{args.deadline_seconds:.0f} s")
    if args.smoke:
        log.info("smoke: real datasets cut to %d, train %s, evaluation %s, models %s", SMOKE_N, SMOKE_TRAIN,
                 SMOKE_EVAL, SMOKE_MODEL)
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        bundle = args.bundle or args.out
        profiles = [load_profile(p, args.mirror, args.runs, args.smoke, args.out) for p in args.profiles]
        names = [p.name for p in profiles]
        if len(set(names)) != len(names):
            raise UserError(f"profiles named twice: {' '.join(names)}")
    except UserError as exc:
        print(f"paper_scale: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2

    own_scratch = args.scratch is None
    args.scratch = Path(tempfile.mkdtemp(prefix="paper_scale-")) if own_scratch else args.scratch
    args.scratch.mkdir(parents=True, exist_ok=True)
    data = DataCache(args.scratch, args.smoke)
    failed = False
    try:
        for profile in profiles:
            profile.out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(profile.path, profile.out / "profile.yaml")
            write_summary(profile, data, args, env, started)
            for key in profile.runs:
                t0 = time.monotonic()
                log.info("== %s / %s (%.0f s elapsed%s)", profile.name, key, t0 - start,
                         "" if deadline is None else f", {deadline - t0:.0f} s left")
                try:
                    record = do_run(profile, key, data, args, deadline, env)
                except UserError as exc:
                    print(f"paper_scale: error: {' '.join(str(exc).split())}", file=sys.stderr)
                    return 2
                except Exception as exc:  # a run that breaks (diverged, out of memory): record it, go on
                    failed = True
                    traceback.print_exc(file=sys.stdout)
                    record = {"run": key, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
                record["wall_seconds"] = time.monotonic() - t0
                profile.status[key] = record
                log.info("== %s / %s: %s%s (%.0f s)", profile.name, key, record["status"],
                         f" ({record['reason']})" if record.get("reason") else "", record["wall_seconds"])
                write_summary(profile, data, args, env, started)
                write_bundle(profiles, args.out, bundle)
            text = write_summary(profile, data, args, env, started)
            write_bundle(profiles, args.out, bundle)
            print(text, flush=True)
    finally:
        if own_scratch:
            shutil.rmtree(args.scratch, ignore_errors=True)
    loaded = forbidden_loaded()
    if loaded:
        print(f"paper_scale: error: {', '.join(loaded)} imported: this script must run without the pipeline's tools",
              file=sys.stderr)
        return 3
    log.info("done in %.0f s; %s written; none of %s imported", time.monotonic() - start, bundle / TARBALL,
             ", ".join(FORBIDDEN))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
