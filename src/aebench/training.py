"""The one training loop, over the model contract of `aebench.models.base`.

It owns what every model needs and none should rewrite: seeding, device choice, batching,
per-step logging, validation and early stopping on the validation loss, a NaN/inf guard, and
a resume checkpoint written atomically at the end of an epoch once `checkpoint_seconds` have
passed since the last one (saving after every 30-step epoch of a small model cost 15% of its
training time). A training killed mid-epoch and started again resumes from the last
checkpointed epoch with the random state it had then, so it ends with the same weights as an
uninterrupted run. The loop knows nothing of MLflow: it reports metrics through the `log`
callback it is given. Conv weights are held channels-last (`memory_format`). Under
`train.precision` bf16 every training step, epoch hook and validation pass runs under
`aebench.precision.autocast`, so models need no change (see that module).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from tqdm.auto import tqdm

from aebench import distributed
from aebench.config import TrainConfig
from aebench.errors import TrainingDiverged, UserError
from aebench.io import atomic_path
from aebench.batching import Batch, iterate_batches
from aebench.models.base import AutoEncoderBase, adam
from aebench.precision import autocast, resolve as resolve_precision

log = logging.getLogger(__name__)

LogFn = Callable[[dict[str, float], int], None]


class JointProbe(torch.nn.Module):
    """`train.joint_probe`: the ACAI paper's linear softmax classifier trained alongside the
    autoencoder on its stop-gradient code (the authors' `single_layer_classifier` on
    `tf.stop_gradient(encode)`, its own Adam), offered to every model so each gets the same probe.

    One step after every training step, on that batch's labelled rows. It reads `model.encode`
    with the model in eval mode, the codes the evaluator sees, in an extra encoder pass under
    no_grad: the model's weights, buffers and random stream are untouched, so a run trains the
    same model with or without the probe. Zero-initialised weights (softmax regression is
    convex) keep it off the random stream too. The evaluator reports its test accuracy
    (`linear_acc_joint`)."""

    def __init__(self, code_dim: int, n_classes: int):
        super().__init__()
        self.head = torch.nn.Linear(code_dim, n_classes)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def step(self, model: AutoEncoderBase, batch: Batch, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
        """One Adam step on the batch's labelled rows; returns `probe_loss` and `probe_acc`. It
        always steps (an all-unlabelled batch gives zero gradients), so ranks stay in lockstep."""
        with torch.no_grad():
            model.eval()
            z = model.encode(batch["x"]).float()
            model.train()
        labels = batch["label"]
        labelled = (labels >= 0).float()
        logits = self.head(z)
        per_row = torch.nn.functional.cross_entropy(logits.float(), labels.clamp(min=0), reduction="none")
        count = labelled.sum().clamp(min=1.0)
        loss = (per_row * labelled).sum() / count
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        correct = ((logits.argmax(1) == labels).float() * labelled).sum() / count
        return {"probe_loss": loss.detach(), "probe_acc": correct.detach()}


def joint_probe(model: AutoEncoderBase, data: Batch, cfg: TrainConfig,
                parallel: bool) -> tuple[JointProbe | None, torch.optim.Optimizer | None]:
    """(the probe, its optimiser) when `train.joint_probe` is on and the data has labels."""
    labels = data["label"]
    if not cfg.joint_probe or not bool((labels >= 0).any()):
        return None, None
    with torch.no_grad():
        model.eval()
        code_dim = model.encode(data["x"][:1]).shape[1]
        model.train()
    probe = JointProbe(code_dim, int(labels.max()) + 1).to(data["x"].device)
    optimizer = adam(probe.parameters(), cfg.joint_probe_lr)
    return probe, distributed.synchronise(optimizer) if parallel else optimizer


def resolve_device(name: str, key: str = "train.device") -> torch.device:
    """The device `name` names (`auto`: CUDA, then MPS, then the CPU); a device this machine
    lacks is the user's error, raised before any work starts."""
    mps = getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        seen = f"{torch.cuda.device_count()} CUDA device(s)" if torch.cuda.is_available() else "no CUDA GPU"
        raise UserError(f"`{key}` is {name} but torch {torch.__version__} sees {seen} here: set `{key}` to `auto` "
                        f"(the GPU where there is one) or `cpu`")
    if device.type == "mps" and not mps:
        raise UserError(f"`{key}` is mps but this machine has no MPS device: set `{key}` to `auto` or `cpu`")
    return device


def loss_read_interval(device: torch.device, log_every: int) -> int:
    """Steps between reads of the loss terms. Reading a loss makes the host wait for the
    device: a CPU reads every step (it costs nothing there, and a NaN stops the run at its
    step); an accelerator sums the terms where it computes them and is read at the logging
    interval and at the end of each epoch, so its queue of kernels never drains mid-epoch."""
    return 1 if device.type == "cpu" else log_every


def memory_format(cfg: TrainConfig) -> torch.memory_format:
    """The layout for conv weights (activations follow them). NHWC is oneDNN's native conv
    layout: 1.12x (MNIST nets) to 1.47x (ACAI's 32x32 nets) the training throughput on 2 CPU
    cores, the same arithmetic up to rounding."""
    return torch.channels_last if cfg.channels_last else torch.preserve_format


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def split_tensors(split, device: torch.device | str = "cpu") -> Batch:
    """A processed split (aebench.data.parquet.Split) as tensors; images scaled to [0, 1]."""
    x = torch.from_numpy(split.x.astype(np.float32))  # one copy; the Parquet view is read-only
    if split.kind == "image":
        x.div_(255.0)
    return {
        "x": x.to(device),
        "label": torch.from_numpy(split.label).long().to(device),
        "group": torch.from_numpy(split.group).long().to(device),
        "index": torch.from_numpy(split.index).long().to(device),
        "pos": torch.arange(len(split.index), device=device),
    }


@dataclass
class TrainResult:
    best_val_loss: float
    epochs_run: int
    train_seconds: float
    samples_per_s: float
    stopped_early: bool
    resumed_from_epoch: int
    history: list[dict] = field(default_factory=list)
    steps: int = 0  # optimiser steps taken (the budget a claim row records)
    samples_seen: int = 0  # training samples drawn, summed over ranks
    precision: str = "fp32"  # the arithmetic `train.precision` resolved to on this device
    probe_state: dict | None = None  # the JointProbe of the best epoch (`train.joint_probe`), else None


@torch.no_grad()
def validation_loss(model: AutoEncoderBase, data: Batch, batch_size: int, seed: int,
                    dtype: torch.dtype = torch.float32) -> float:
    """Mean validation loss with a fixed noise seed, so it is comparable across epochs and
    leaves the training random stream untouched; computed in the training's precision."""
    model.eval()
    total, count = 0.0, 0
    devices = [data["x"].device] if data["x"].is_cuda else []
    with torch.random.fork_rng(devices=devices), autocast(dtype, data["x"].device):
        torch.manual_seed(seed)
        for batch in iterate_batches(data, batch_size):
            n = len(batch["x"])
            total += float(model.loss(batch, step=0)["loss"]) * n
            count += n
    model.train()
    return total / max(count, 1)


def _save_resume(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_resume(path: Path, fingerprint: str) -> dict | None:
    """The resume state at `path` if it belongs to the same config and data, else None."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a corrupt resume file is not worth failing over: start again
        log.warning("ignoring unreadable resume checkpoint %s (%s)", path, exc)
        return None
    if state.get("fingerprint") != fingerprint:
        log.info("resume checkpoint %s is for other params or data; starting afresh", path)
        return None
    return state


def run_fingerprint(**parts) -> str:
    """The resume checkpoint's key: a digest of everything that defines a run (dataset, model,
    config, training settings, data hash, auxiliary inputs), so a changed run never resumes."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def training_step(model: AutoEncoderBase, batch: Batch, optimizers: list, step: int, dtype: torch.dtype,
                  probe: JointProbe | None = None, probe_optimizer: torch.optim.Optimizer | None = None) -> dict:
    """One training step, the joint probe's included: the loss terms, as tensors on the device."""
    with autocast(dtype, batch["x"].device):  # the whole step: models with critics call backward themselves
        terms = model.train_step(batch, optimizers, step)
        if probe is not None:
            terms = {**terms, **probe.step(model, batch, probe_optimizer)}
    return terms


FreshFn = Callable[[int, torch.Generator, tuple[int, ...], torch.device], Batch]


def steps_per_epoch(n_train: int, cfg: TrainConfig) -> int:
    """Optimiser steps in one epoch: the stored train split's full batches, capped by
    `train.max_steps_per_epoch` (with `train.fresh_data` too: the split sets the epoch's length)."""
    steps = max(1, n_train // cfg.batch_size)
    return min(steps, cfg.max_steps_per_epoch) if cfg.max_steps_per_epoch else steps


def epoch_batches(model: AutoEncoderBase, data: Batch, cfg: TrainConfig, generator: torch.Generator,
                  fresh: FreshFn | None = None) -> Iterator[Batch]:
    """One epoch's training batches: the model's own over the stored split (`model.batches`), or,
    with a `fresh` draw (the dataset's `aebench.data.registry.FRESH` function, `train.fresh_data`),
    as many new batches of samples from `generator`."""
    steps = steps_per_epoch(len(data["x"]), cfg)
    if fresh is None:
        yield from model.batches(data, cfg.batch_size, generator, steps)
        return
    shape, device = tuple(data["x"].shape[1:]), data["x"].device
    for _ in range(steps):
        yield fresh(cfg.batch_size, generator, shape, device)


def train(model: AutoEncoderBase, train_data: Batch, val_data: Batch, cfg: TrainConfig, *,
          resume_path: Path, fingerprint: str, resume_meta: dict | None = None,
          log_fn: LogFn | None = None, fresh: FreshFn | None = None) -> TrainResult:
    """Train `model` in place and leave it holding the weights of its best validation epoch
    (`fresh`: draw the training batches, see `epoch_batches`)."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    device = train_data["x"].device
    dtype = resolve_precision(cfg.precision, device)
    model.to(device, memory_format=memory_format(cfg)).train()
    parallel = distributed.active()
    if parallel:
        distributed.broadcast_module(model)
    optimizers = model.optimizers(cfg.lr)
    if parallel:
        optimizers = [distributed.synchronise(o) for o in optimizers]
    probe, probe_optimizer = joint_probe(model, train_data, cfg, parallel)
    best_probe = None
    # the same global batch order (or fresh draws) on every rank
    shuffle = torch.Generator().manual_seed(cfg.seed)
    main = distributed.is_main()
    if log_fn is None or not main:
        log_fn = lambda metrics, step: None  # noqa: E731

    start_epoch, step, history = 0, 0, []
    best_val, best_state, bad_epochs = math.inf, None, 0
    elapsed_train, samples_seen = 0.0, 0
    state = load_resume(resume_path, fingerprint)
    if state is not None:
        model.load_state_dict(state["model"])
        for opt, opt_state in zip(optimizers, state["optimizers"]):
            opt.load_state_dict(opt_state)
        shuffle.set_state(state["shuffle_rng"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and "cuda_rng" in state:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        start_epoch, step, history = state["epoch"], state["step"], list(state["history"])
        best_val, best_state, bad_epochs = state["best_val"], state["best_state"], state["bad_epochs"]
        elapsed_train, samples_seen = state["elapsed_train"], state["samples_seen"]
        if probe is not None:
            probe.load_state_dict(state["probe"])
            probe_optimizer.load_state_dict(state["probe_optimizer"])
            best_probe = state["best_probe"]
        log.info("resuming from epoch %d of %s", start_epoch, resume_path)
    else:
        seed_everything(cfg.seed + distributed.rank())  # model noise differs per rank, as in DDP

    read_every = loss_read_interval(device, cfg.log_every)

    def read(terms: dict, first: int, last: int, epoch: int) -> None:
        """Add the terms of steps `first`..`last` to the epoch's sums and the logging window;
        stop on a NaN."""
        values = {k: float(v) for k, v in terms.items()}
        if not math.isfinite(values["loss"]):
            where = f"step {first}" if first == last else f"steps {first}-{last}"
            raise TrainingDiverged(
                f"loss became {values['loss']} at epoch {epoch + 1}, {where}; nothing was registered and the "
                f"last checkpointed state, if any, is kept in {resume_path}; lower `train.lr` (now {cfg.lr}) "
                f"or check the data")
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
            window[k] = window.get(k, 0.0) + v

    stopped_early = False
    wall_start = last_checkpoint = time.perf_counter()
    bar = tqdm(range(start_epoch, cfg.epochs), desc="epochs", initial=start_epoch, total=cfg.epochs,
               disable=None if main else True, leave=False)
    for epoch in bar:
        if bad_epochs >= cfg.patience:
            stopped_early = True
            break
        with autocast(dtype, device):
            model.on_epoch_start(epoch, train_data["x"])
        sums: dict[str, float] = {}
        window: dict[str, float] = {}
        unread: dict = {}  # the terms since they were last read from the device
        unread_from = step
        n_batches = 0
        t0 = time.perf_counter()
        for batch in epoch_batches(model, train_data, cfg, shuffle, fresh):
            if parallel:
                batch = distributed.shard(batch)
            terms = training_step(model, batch, optimizers, step, dtype, probe, probe_optimizer)
            if read_every == 1:
                read(terms, step, step, epoch)
            else:  # summed where they were computed: no wait for the device
                for k, v in terms.items():
                    unread[k] = unread.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v)
            n_batches += 1
            samples_seen += len(batch["x"]) * (distributed.world_size() if parallel else 1)
            step += 1
            if unread and step % read_every == 0:
                read(unread, unread_from, step - 1, epoch)
                unread, unread_from = {}, step
            if step % cfg.log_every == 0:
                log_fn({f"step/{k}": v / cfg.log_every for k, v in window.items()}, step)
                window = {}
        if unread:
            read(unread, unread_from, step - 1, epoch)
        epoch_seconds = time.perf_counter() - t0
        elapsed_train += epoch_seconds
        val = validation_loss(model, val_data, cfg.batch_size, cfg.seed, dtype)
        if not math.isfinite(val):
            raise TrainingDiverged(f"validation loss became {val} at epoch {epoch + 1}; nothing was registered; "
                                   f"lower `train.lr` (now {cfg.lr})")
        record = {"epoch": epoch + 1, "step": step, "val_loss": val, "epoch_seconds": epoch_seconds,
                  **{f"train_{k}": v / max(n_batches, 1) for k, v in sums.items()}}
        history.append(record)
        log_fn({k: v for k, v in record.items() if k not in ("epoch", "step")}, step)
        if val < best_val:
            best_val, bad_epochs = val, 0
            best_state = {k: v.detach().clone().cpu() for k, v in model.state_dict().items()}
            if probe is not None:
                best_probe = {k: v.detach().clone().cpu() for k, v in probe.state_dict().items()}
        else:
            bad_epochs += 1
        bar.set_postfix(loss=f"{record['train_loss']:.4g}", val=f"{val:.4g}")
        if not main:
            continue
        log.info("epoch %d/%d: train loss %.5g, val loss %.5g (%.1fs)", epoch + 1, cfg.epochs,
                 record["train_loss"], val, epoch_seconds)
        if time.perf_counter() - last_checkpoint < cfg.checkpoint_seconds:
            continue
        last_checkpoint = time.perf_counter()
        _save_resume(resume_path, {
            "fingerprint": fingerprint, "meta": resume_meta or {}, "epoch": epoch + 1, "step": step,
            "model": model.state_dict(), "optimizers": [o.state_dict() for o in optimizers],
            "shuffle_rng": shuffle.get_state(), "torch_rng": torch.get_rng_state(), "history": history,
            **({"cuda_rng": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
            "best_val": best_val, "best_state": best_state, "bad_epochs": bad_epochs,
            "elapsed_train": elapsed_train, "samples_seen": samples_seen,
            **({"probe": probe.state_dict(), "probe_optimizer": probe_optimizer.state_dict(), "best_probe": best_probe}
               if probe is not None else {}),
        })
    bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    log.info("trained %d epochs in %.1fs", len(history), time.perf_counter() - wall_start)
    return TrainResult(
        best_val_loss=best_val, epochs_run=len(history), train_seconds=elapsed_train,
        samples_per_s=samples_seen / elapsed_train if elapsed_train > 0 else float("nan"),
        stopped_early=stopped_early, resumed_from_epoch=start_epoch if state is not None else 0,
        history=history, steps=step, samples_seen=samples_seen,
        precision="bf16" if dtype == torch.bfloat16 else "fp32", probe_state=best_probe,
    )


def discard_resume(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
