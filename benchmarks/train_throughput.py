"""Training throughput (samples/s): aebench's trainer against a bare PyTorch loop and against
pythae's trainer, on the same model, data, batch, optimiser and thread count, interleaved in
one run, in fp32 and in bf16 mixed precision; each contender's achieved GFLOP/s beside the
machine's ceiling measured in the same run. A benchmark, not a test:

    .venv/bin/pip install pythae==0.1.2     # `make bench` does this; not a project dependency
    .venv/bin/python benchmarks/train_throughput.py [--threads 1] [--repeats 3]

What each contender runs, per (dataset, model):
- `bare`: the floor. A hand-written loop: a `torch.randperm` per epoch, index the batch,
  `model.train_step(batch, optimizers, step)` (the model's own forward, backward and
  optimiser steps: the same arithmetic every contender has to do), nothing else.
- `aebench`: `aebench.training.train` as the train stage calls it, with its MLflow logger on a
  throw-away SQLite store, tqdm, the NaN guard and the resume checkpoint (at the params.yaml
  interval), timed over the whole `train()` call: its per-epoch validation (256 images),
  checkpoints and the wait for the logged metrics to be stored count against it (the others
  are timed on their batch loops only). It holds conv weights channels-last (the trainer's
  `channels_last`, on by default); `bare` and `pythae` run torch's default NCHW layout, so on
  the conv nets aebench / bare measures that layout as well as the loop's overhead.
- `pythae`: pythae 0.1.2's `BaseTrainer` (`AdversarialTrainer` for the AAE), `train_step` per
  epoch after `prepare_training`, with the same encoder and decoder modules (aebench's nets,
  wrapped in pythae's BaseEncoder/BaseDecoder) and pythae's own loss for the model: AE, VAE
  and beta-VAE (BCE, beta 4), WAE-MMD (IMQ kernel, weight 10), AAE (our code discriminator,
  wrapped), VQ-VAE (EMA codebook of 1,024 entries; aebench's VQ-VAE adds the paper's small
  dense bottleneck, about 1% of its FLOPs). pythae feeds batches through a torch DataLoader
  over its dataset class (item-wise indexing and collation): part of what a user gets.
Precision: `bare` and `aebench` run twice, in fp32 and under `aebench.precision.autocast`
bf16 (what `train.precision: bf16` does: bf16 matmuls and convolutions, fp32 weights, optimiser
state and reductions). pythae runs in fp32 only: its best CPU setting, since its `amp` flag
drives CUDA's autocast and does nothing on a CPU. The ratios `trainer_vs_bare_ratio` and
`trainer_vs_pythae_ratio` compare aebench at the precision `train.precision` resolves to on
this machine (params.yaml; `auto` is bf16 on a CPU with AVX512-BF16) with `bare` at the same
precision and with pythae.

GFLOP/s: the FLOPs of one training step (forward and backward passes, counted by
`torch.utils.flop_counter.FlopCounterMode`: matmuls and convolutions, the work that matters
here) per sample, times samples/s. The ceiling is a 2048x2048 square matmul at the same
thread count, in fp32 and in bf16, timed in the same run: `ceiling_fraction` is a
contender's GFLOP/s over the ceiling of its precision.

Models come from params.yaml (same sections as the pipeline); the optimiser is Adam at 1e-3
for all: the models' own (torch's fused Adam kernel) for `bare` and `aebench`, pythae's
(torch's default Adam implementation) for `pythae`. Each repeat runs the three contenders in a rotated order on fresh models with the
same seed; the median over repeats is reported, and the ratios are aebench / peer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, load_mnist, pin_threads, update_results  # noqa: E402

from aebench.precision import autocast, resolve  # noqa: E402

MODELS = ("ae", "vae", "betavae", "aae", "vqvae", "wae")
BATCH = 64
LR = 1e-3
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
CONTENDERS = ("bare/fp32", "aebench/fp32", "bare/bf16", "aebench/bf16", "pythae/fp32")


def load_dataset(name: str) -> tuple[torch.Tensor, int]:
    """Training images in [0, 1] and the epochs that make a comparable run: MNIST, 9,600
    images (150 steps, 1 epoch); the embedded 8x8 digits, 1,792 images (28 steps, 5 epochs)."""
    if name == "mnist":
        x, _ = load_mnist(150 * BATCH)
        return torch.from_numpy(x), 1
    from aebench.data.registry import EMBEDDED

    raw = EMBEDDED["digits"](0, 0)
    x = raw.x.astype(np.float32)
    x = x / 255.0 if x.max() > 1 else x
    return torch.from_numpy(x[: (len(x) // BATCH) * BATCH]), 5


def build(model_name: str, x: torch.Tensor):
    from aebench.plan import load_params, resolve_model
    from aebench.models import build_model
    from aebench.models.base import DataInfo

    model_type, config, _ = resolve_model(load_params(REPO / "params.yaml"), model_name)
    info = DataInfo(shape=tuple(x.shape[1:]), kind="image", n_classes=10, n_train=len(x))
    torch.manual_seed(0)
    return build_model(model_type, config, info)


def batch_of(x: torch.Tensor, idx: torch.Tensor) -> dict:
    labels = torch.zeros(len(idx), dtype=torch.long)
    return {"x": x[idx], "label": labels, "group": labels, "index": idx, "pos": idx}


def run_bare(model_name: str, x: torch.Tensor, epochs: int, dtype: torch.dtype) -> float:
    model = build(model_name, x).train()
    optimizers = model.optimizers(LR)
    gen = torch.Generator().manual_seed(0)
    step, seconds = 0, 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x) - BATCH + 1, BATCH):
            with autocast(dtype, "cpu"):
                model.train_step(batch_of(x, order[start:start + BATCH]), optimizers, step)
            step += 1
        seconds += time.perf_counter() - t0
    return step * BATCH / seconds


def trainer_inputs(x: torch.Tensor, epochs: int, threads: int, precision: str):
    """The training and validation tensors (256 images) and the TrainConfig the trainer gets:
    params.yaml's logging and checkpoint intervals, no early stop."""
    from aebench.config import TrainConfig
    from aebench.plan import load_params

    n = len(x)
    data = {"x": x, "label": torch.zeros(n, dtype=torch.long), "group": torch.zeros(n, dtype=torch.long),
            "index": torch.arange(n), "pos": torch.arange(n)}
    defaults = load_params(REPO / "params.yaml").train
    cfg = TrainConfig(epochs=epochs, batch_size=BATCH, lr=LR, patience=epochs, device="cpu", num_threads=threads,
                      log_every=defaults.log_every, checkpoint_seconds=defaults.checkpoint_seconds, precision=precision)
    return data, {k: v[:256] for k, v in data.items()}, cfg


def run_aebench(model_name: str, x: torch.Tensor, epochs: int, threads: int, root: Path, precision: str) -> float:
    from aebench import tracking
    from aebench.training import train

    model = build(model_name, x)
    data, val, cfg = trainer_inputs(x, epochs, threads, precision)
    client = tracking.client(root)  # one throw-away store per benchmark run
    run_id = tracking.start_run(client, "bench", model_name, 0, tags={}, params={}, root=root)
    logger = tracking.RunLogger(client, run_id, background=True)  # as the train stage logs
    t0 = time.perf_counter()
    train(model, data, val, cfg, resume_path=root / f"resume-{model_name}-{time.time_ns()}.pt", fingerprint="bench",
          log_fn=logger)
    logger.flush()
    return epochs * (len(x) // BATCH) * BATCH / (time.perf_counter() - t0)


def pythae_model(model_name: str, ours):
    """pythae's version of `model_name` around aebench's encoder and decoder modules."""
    from pythae import models as pm
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseDiscriminator, BaseEncoder

    shape = tuple(ours.info.shape)
    d = ours.config.latent_dim
    variational = model_name in ("vae", "betavae")

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = ours.encoder

        def forward(self, x):
            out = self.net(x)
            if variational:
                mu, logvar = out.chunk(2, dim=1)
                return ModelOutput(embedding=mu, log_covariance=logvar)
            # pythae's AAE reparameterises: a vanishing variance keeps it deterministic like ours
            return ModelOutput(embedding=out, log_covariance=torch.full_like(out, -30.0))

    class Decoder(BaseDecoder):
        def __init__(self, squash: bool):
            super().__init__()
            self.net = getattr(ours.decoder, "net", ours.decoder)  # the VAE's decoder wraps its net
            self.squash = squash

        def forward(self, z):
            out = self.net(z)
            return ModelOutput(reconstruction=torch.sigmoid(out) if self.squash else out)

    class Discriminator(BaseDiscriminator):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, z):
            return ModelOutput(embedding=torch.sigmoid(self.net(z)))

    if model_name == "ae":
        return pm.AE(pm.AEConfig(input_dim=shape, latent_dim=d), Encoder(), Decoder(True))
    if model_name in ("vae", "betavae"):
        cfg = pm.BetaVAEConfig(input_dim=shape, latent_dim=d, reconstruction_loss="bce",
                               beta=float(ours.config.beta))
        return pm.BetaVAE(cfg, Encoder(), Decoder(True))  # pythae's BCE takes probabilities
    if model_name == "wae":
        cfg = pm.WAE_MMD_Config(input_dim=shape, latent_dim=d, kernel_choice="imq", reg_weight=10.0,
                                scales=[0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0])
        return pm.WAE_MMD(cfg, Encoder(), Decoder(True))
    if model_name == "aae":
        cfg = pm.Adversarial_AE_Config(input_dim=shape, latent_dim=d, reconstruction_loss="mse")
        return pm.Adversarial_AE(cfg, Encoder(), Decoder(False), Discriminator(ours.discriminator))
    if model_name == "vqvae":
        cfg = pm.VQVAEConfig(input_dim=shape, latent_dim=d, num_embeddings=1024, use_ema=True)
        return pm.VQVAE(cfg, Encoder(), Decoder(False))
    raise KeyError(model_name)


def flops_per_sample(model_name: str, x: torch.Tensor) -> float:
    """FLOPs of one fp32 training step (forward and backward) divided by the batch size."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build(model_name, x).train()
    optimizers = model.optimizers(LR)
    counter = FlopCounterMode(display=False)
    with counter:
        model.train_step(batch_of(x, torch.arange(BATCH)), optimizers, 0)
    return counter.get_total_flops() / BATCH


def matmul_ceiling(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of the best of `repeats` n x n matmuls in `dtype`: what the cores can do."""
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    a @ b  # warm-up: oneDNN/BLAS pick their kernels on the first call
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_pythae(model_name: str, x: torch.Tensor, epochs: int) -> float:
    from pythae.data.datasets import BaseDataset
    from pythae.trainers import (AdversarialTrainer, AdversarialTrainerConfig, BaseTrainer,
                                 BaseTrainerConfig)

    model = pythae_model(model_name, build(model_name, x))
    dataset = BaseDataset(x, torch.zeros(len(x)))
    with tempfile.TemporaryDirectory() as tmp:
        common = dict(output_dir=tmp, per_device_train_batch_size=BATCH, num_epochs=epochs, no_cuda=True,
                      learning_rate=LR, seed=0)
        if model_name == "aae":
            trainer = AdversarialTrainer(model, dataset, training_config=AdversarialTrainerConfig(
                **{k: v for k, v in common.items() if k != "learning_rate"}, autoencoder_learning_rate=LR,
                discriminator_learning_rate=LR))
        else:
            trainer = BaseTrainer(model, dataset, training_config=BaseTrainerConfig(**common))
        trainer.prepare_training()
        seconds, samples = 0.0, 0
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            trainer.train_step(epoch)
            seconds += time.perf_counter() - t0
            samples += (len(x) // BATCH) * BATCH + (len(x) % BATCH)
    return samples / seconds


def run(contender: str, model_name: str, x: torch.Tensor, epochs: int, threads: int, root: Path) -> float:
    kind, precision = contender.split("/")
    if kind == "bare":
        return run_bare(model_name, x, epochs, DTYPES[precision])
    if kind == "aebench":
        return run_aebench(model_name, x, epochs, threads, root, precision)
    return run_pythae(model_name, x, epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", nargs="*", default=["mnist", "digits"])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    pin_threads(args.threads)
    import logging

    from aebench.plan import load_params

    logging.disable(logging.WARNING)  # pythae and mlflow chatter
    configured = load_params(REPO / "params.yaml").train.precision
    default = "bf16" if resolve(configured, "cpu") == torch.bfloat16 else "fp32"
    ceiling = {p: round(matmul_ceiling(dtype), 1) for p, dtype in DTYPES.items()}
    print(f"matmul ceiling, {args.threads} thread(s): " + ", ".join(f"{p} {g:.1f} GFLOP/s" for p, g in ceiling.items())
          + f"; train.precision {configured} -> {default} here", flush=True)
    samples: dict[str, dict[str, dict[str, list[float]]]] = {}
    flops: dict[str, dict[str, float]] = {}
    store = tempfile.TemporaryDirectory()
    print(f"{'dataset':8s} {'model':8s} " + " ".join(f"{c:>13s}" for c in CONTENDERS)
          + f"  bf16/fp32  aebench/bare  aebench/pythae  ({default}; samples/s, median of repeats)", flush=True)
    for dataset in args.datasets:
        x, epochs = load_dataset(dataset)
        for model_name in args.models:
            flops.setdefault(dataset, {})[model_name] = flops_per_sample(model_name, x)
            got = {c: [] for c in CONTENDERS}
            for rep in range(args.repeats):
                shift = rep % len(CONTENDERS)
                for c in CONTENDERS[shift:] + CONTENDERS[:shift]:
                    got[c].append(run(c, model_name, x, epochs, args.threads, Path(store.name)))
            samples.setdefault(dataset, {})[model_name] = got
            med = {c: statistics.median(v) for c, v in got.items()}
            print(f"{dataset:8s} {model_name:8s} " + " ".join(f"{med[c]:13.0f}" for c in CONTENDERS)
                  + f"  {med['aebench/bf16'] / med['aebench/fp32']:9.2f}"
                  + f"  {med[f'aebench/{default}'] / med[f'bare/{default}']:12.3f}"
                  + f"  {med[f'aebench/{default}'] / med['pythae/fp32']:14.2f}", flush=True)
    med = {d: {m: {c: statistics.median(v) for c, v in got.items()} for m, got in per.items()}
           for d, per in samples.items()}

    def per_model(fn):
        return {d: {m: fn(d, m, v) for m, v in per.items()} for d, per in med.items()}

    update_results({
        "train_precision": {"configured": configured, "resolved": default},
        "train_samples_per_s": per_model(lambda d, m, v: round(v[f"aebench/{default}"], 1)),
        "bare_samples_per_s": per_model(lambda d, m, v: round(v[f"bare/{default}"], 1)),
        "pythae_samples_per_s": per_model(lambda d, m, v: round(v["pythae/fp32"], 1)),
        "precision_samples_per_s": per_model(lambda d, m, v: {c: round(s, 1) for c, s in v.items()}),
        "bf16_vs_fp32_ratio": per_model(lambda d, m, v: {k: round(v[f"{k}/bf16"] / v[f"{k}/fp32"], 3)
                                                         for k in ("bare", "aebench")}),
        "trainer_vs_bare_ratio": per_model(lambda d, m, v: round(v[f"aebench/{default}"] / v[f"bare/{default}"], 3)),
        "trainer_vs_pythae_ratio": per_model(lambda d, m, v: round(v[f"aebench/{default}"] / v["pythae/fp32"], 3)),
        "train_gflops_per_sample": per_model(lambda d, m, v: round(flops[d][m] / 1e9, 5)),
        "train_gflops": per_model(lambda d, m, v: {c: round(s * flops[d][m] / 1e9, 2) for c, s in v.items()}),
        "ceiling_fraction": per_model(lambda d, m, v: {
            c: round(s * flops[d][m] / 1e9 / ceiling[c.split("/")[1]], 4) for c, s in v.items()}),
        "matmul_ceiling_gflops": ceiling,
        "train_threads": args.threads,
    })


if __name__ == "__main__":
    main()
