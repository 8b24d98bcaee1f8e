"""Training throughput (samples/s): aebench's trainer against a bare PyTorch loop and against
pythae's trainer, on the same model, data, batch, optimiser and thread count, interleaved in
one run. A benchmark, not a test:

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

MODELS = ("ae", "vae", "betavae", "aae", "vqvae", "wae")
BATCH = 64
LR = 1e-3


def load_dataset(name: str) -> tuple[torch.Tensor, int]:
    """Training images in [0, 1] and the epochs that make a comparable run: MNIST, 9,600
    images (150 steps, 1 epoch); the embedded 8x8 digits, 1,792 images (28 steps, 5 epochs)."""
    if name == "mnist":
        x, _ = load_mnist(150 * BATCH)
        return torch.from_numpy(x), 1
    from aebench.data.synthetic import EMBEDDED

    raw = EMBEDDED["digits"](0, 0)
    x = raw.x.astype(np.float32)
    x = x / 255.0 if x.max() > 1 else x
    return torch.from_numpy(x[: (len(x) // BATCH) * BATCH]), 5


def build(model_name: str, x: torch.Tensor):
    from aebench.config import load_params, resolve_model
    from aebench.models import build_model
    from aebench.models.base import DataInfo

    model_type, config, _ = resolve_model(load_params(REPO / "params.yaml"), model_name)
    info = DataInfo(shape=tuple(x.shape[1:]), kind="image", n_classes=10, n_train=len(x))
    torch.manual_seed(0)
    return build_model(model_type, config, info)


def run_bare(model_name: str, x: torch.Tensor, epochs: int) -> float:
    model = build(model_name, x).train()
    optimizers = model.optimizers(LR)
    gen = torch.Generator().manual_seed(0)
    labels = torch.zeros(len(x), dtype=torch.long)
    step, seconds = 0, 0.0
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x) - BATCH + 1, BATCH):
            idx = order[start:start + BATCH]
            batch = {"x": x[idx], "label": labels[idx], "group": labels[idx], "index": idx, "pos": idx}
            model.train_step(batch, optimizers, step)
            step += 1
        seconds += time.perf_counter() - t0
    return step * BATCH / seconds


def run_aebench(model_name: str, x: torch.Tensor, epochs: int, threads: int, root: Path) -> float:
    from aebench import tracking
    from aebench.config import TrainConfig, load_params
    from aebench.training import train

    model = build(model_name, x)
    n = len(x)
    data = {"x": x, "label": torch.zeros(n, dtype=torch.long), "group": torch.zeros(n, dtype=torch.long),
            "index": torch.arange(n), "pos": torch.arange(n)}
    val = {k: v[:256] for k, v in data.items()}
    defaults = load_params(REPO / "params.yaml").train
    cfg = TrainConfig(epochs=epochs, batch_size=BATCH, lr=LR, patience=epochs, device="cpu", num_threads=threads,
                      log_every=defaults.log_every, checkpoint_seconds=defaults.checkpoint_seconds)
    client = tracking.client(root)  # one throw-away store per benchmark run
    run_id = tracking.start_run(client, "bench", model_name, tags={}, params={}, root=root)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--datasets", nargs="*", default=["mnist", "digits"])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    pin_threads(args.threads)
    import logging

    logging.disable(logging.WARNING)  # pythae and mlflow chatter
    contenders = ["bare", "aebench", "pythae"]
    samples: dict[str, dict[str, dict[str, list[float]]]] = {}
    store = tempfile.TemporaryDirectory()
    print(f"{'dataset':8s} {'model':8s} " + " ".join(f"{c:>10s}" for c in contenders)
          + "  aebench/bare  aebench/pythae   (samples/s, median of repeats)", flush=True)
    for dataset in args.datasets:
        x, epochs = load_dataset(dataset)
        for model_name in args.models:
            got = {c: [] for c in contenders}
            for rep in range(args.repeats):
                for c in contenders[rep % 3:] + contenders[:rep % 3]:
                    if c == "bare":
                        got[c].append(run_bare(model_name, x, epochs))
                    elif c == "aebench":
                        got[c].append(run_aebench(model_name, x, epochs, args.threads, Path(store.name)))
                    else:
                        got[c].append(run_pythae(model_name, x, epochs))
            samples.setdefault(dataset, {})[model_name] = got
            med = {c: statistics.median(v) for c, v in got.items()}
            print(f"{dataset:8s} {model_name:8s} " + " ".join(f"{med[c]:10.0f}" for c in contenders)
                  + f"  {med['aebench'] / med['bare']:12.3f}  {med['aebench'] / med['pythae']:14.2f}", flush=True)
    med = {d: {m: {c: statistics.median(v) for c, v in got.items()} for m, got in per.items()}
           for d, per in samples.items()}
    update_results({
        "train_samples_per_s": {d: {m: round(v["aebench"], 1) for m, v in per.items()} for d, per in med.items()},
        "bare_samples_per_s": {d: {m: round(v["bare"], 1) for m, v in per.items()} for d, per in med.items()},
        "pythae_samples_per_s": {d: {m: round(v["pythae"], 1) for m, v in per.items()} for d, per in med.items()},
        "trainer_vs_bare_ratio": {d: {m: round(v["aebench"] / v["bare"], 3) for m, v in per.items()}
                                  for d, per in med.items()},
        "trainer_vs_pythae_ratio": {d: {m: round(v["aebench"] / v["pythae"], 3) for m, v in per.items()}
                                    for d, per in med.items()},
        "train_threads": args.threads,
    })


if __name__ == "__main__":
    main()
