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
Precision: `bare` and `aebench` run in fp32 and, where the CPU computes bf16 natively
(AVX512-BF16 or AMX; `aebench.precision.native_bf16`), again under `aebench.precision.autocast`
bf16 (what `train.precision: bf16` does: bf16 matmuls and convolutions, fp32 weights, optimiser
state and reductions). On a CPU that only emulates bf16 (AVX2, plain AVX-512) the bf16
contenders are skipped and the reason printed and recorded: emulation would time the
emulation, and the trainer refuses explicit bf16 there. pythae runs in fp32 only: its best CPU
setting, since its `amp` flag drives CUDA's autocast and does nothing on a CPU. The ratios
compare aebench with `bare` at equal precision and with pythae's fp32.

What the machine can do is read before anything runs (`aebench.machine.describe`: CPU, vector
extensions, native bf16); each (dataset, model)'s figures are written to results.json as soon
as they are measured, under the machine's id (`train_throughput.<machine>.<dataset>.<model>`,
with the time and commit), so a later failure loses nothing and figures of two machines never
meet in one ratio. A contender that fails is recorded with its error; the others go on.

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
from common import REPO, load_mnist, load_results, pin_threads, save_results, stamp  # noqa: E402

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


def plan_contenders(native_bf16: bool, flags: list[str], have_pythae: bool) -> tuple[list[str], dict[str, str]]:
    """The contenders this machine can run, and why each other one is skipped: bf16 where the
    CPU only emulates it would time the emulation (and `train.precision: bf16` refuses it),
    pythae where it is not installed."""
    runnable, skipped = [], {}
    for contender in CONTENDERS:
        kind, precision = contender.split("/")
        if precision == "bf16" and not native_bf16:
            skipped[contender] = (f"no native bf16 on this CPU (vector extensions: {' '.join(flags) or 'none'}; "
                                  "bf16 needs avx512_bf16 or amx_bf16): emulated bf16 would time the emulation")
        elif kind == "pythae" and not have_pythae:
            skipped[contender] = "pythae is not installed: `.venv/bin/pip install pythae==0.1.2` (`make bench` does)"
        else:
            runnable.append(contender)
    return runnable, skipped


def ratios(med: dict[str, float]) -> dict[str, float]:
    """aebench against each peer at equal precision (pythae runs fp32 only), and bf16 over fp32:
    only between contenders of this run, so never across machines."""
    out = {}
    for precision in ("fp32", "bf16"):
        ours = med.get(f"aebench/{precision}")
        if ours and med.get(f"bare/{precision}"):
            out[f"aebench_vs_bare_{precision}"] = round(ours / med[f"bare/{precision}"], 3)
        if ours and med.get("pythae/fp32"):
            out[f"aebench_{precision}_vs_pythae_fp32"] = round(ours / med["pythae/fp32"], 3)
    if med.get("aebench/bf16") and med.get("aebench/fp32"):
        out["aebench_bf16_vs_fp32"] = round(med["aebench/bf16"] / med["aebench/fp32"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", nargs="*", default=["mnist", "digits"])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    pin_threads(args.threads)
    import importlib.util
    import logging

    from aebench import machine
    from aebench.plan import load_params

    logging.disable(logging.WARNING)  # pythae and mlflow chatter
    info = machine.describe()
    contenders, skipped = plan_contenders(info["cpu_native_bf16"], info["vector_flags"],
                                          importlib.util.find_spec("pythae") is not None)
    configured = load_params(REPO / "params.yaml").train.precision
    default = "bf16" if resolve(configured, "cpu") == torch.bfloat16 else "fp32"
    print(f"machine: {machine.label(info)}; native bf16: {'yes' if info['cpu_native_bf16'] else 'no'}; "
          f"{args.threads} thread(s); train.precision {configured} -> {default} here", flush=True)
    for contender, why in skipped.items():
        print(f"skipped {contender}: {why}", flush=True)
    ceiling = {p: round(matmul_ceiling(DTYPES[p]), 1) for p in sorted({c.split('/')[1] for c in contenders})}
    print("matmul ceiling: " + ", ".join(f"{p} {g:.1f} GFLOP/s" for p, g in ceiling.items()), flush=True)
    print(f"{'dataset':8s} {'model':8s} " + " ".join(f"{c:>13s}" for c in contenders)
          + "  ratios (samples/s, median of repeats)", flush=True)
    store = tempfile.TemporaryDirectory()
    for dataset in args.datasets:
        x, epochs = load_dataset(dataset)
        for model_name in args.models:
            flops = flops_per_sample(model_name, x)
            got: dict[str, list[float]] = {c: [] for c in contenders}
            failed = dict(skipped)
            for rep in range(args.repeats):
                shift = rep % len(contenders)
                for c in contenders[shift:] + contenders[:shift]:
                    if c in failed:
                        continue
                    try:
                        got[c].append(run(c, model_name, x, epochs, args.threads, Path(store.name)))
                    except Exception as error:  # one contender's failure must not lose the others' figures
                        failed[c] = f"failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
                        print(f"{dataset} {model_name} {c} {failed[c]}", flush=True)
            med = {c: statistics.median(v) for c, v in got.items() if v and c not in failed}
            pair = {"threads": args.threads, "repeats": args.repeats, "precision_default": default,
                    "samples_per_s": {c: round(v, 1) for c, v in med.items()},
                    "runs": {c: [round(v, 1) for v in got[c]] for c in med},
                    "gflops_per_sample": round(flops / 1e9, 5),
                    "gflops": {c: round(v * flops / 1e9, 2) for c, v in med.items()},
                    "ceiling_fraction": {c: round(v * flops / 1e9 / ceiling[c.split("/")[1]], 4) for c, v in med.items()},
                    "matmul_ceiling_gflops": ceiling, "ratios": ratios(med), "skipped": failed}
            record_pair(dataset, model_name, pair)  # written now: a later failure loses nothing
            print(f"{dataset:8s} {model_name:8s} " + " ".join(f"{med.get(c, float('nan')):13.0f}" for c in contenders)
                  + "  " + ", ".join(f"{k} {v:.2f}" for k, v in pair["ratios"].items()), flush=True)


def record_pair(dataset: str, model_name: str, pair: dict) -> None:
    """One (dataset, model)'s figures into results.json under this machine's id, stamped."""
    results = load_results()
    now = stamp(results)
    section = results.setdefault("train_throughput", {}).setdefault(now["machine"], {})
    section.setdefault(dataset, {})[model_name] = {**pair, "recorded": now["recorded"], "commit": now["commit"]}
    save_results(results)


if __name__ == "__main__":
    main()
