"""What every evaluation suite reads: the model, the splits, their codes, the protocol, and
the results several suites share (reconstructions, the negative ELBO, the model's samples).

Shared results are cached properties of `EvalContext`: the first suite that asks computes
one, every later one reuses it, whatever the order of the suites. Each is computed the same
way whoever asks first (its own seed, and `torch.random.fork_rng` around its draws, so it
leaves the global generator as it found it), so a suite never depends on another having run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from aebench.batching import iterate_batches
from aebench.data.parquet import Split
from aebench.metrics.topology import GW_POINTS
from aebench.models.base import AutoEncoderBase
from aebench.precision import autocast
from aebench.training import split_tensors


@torch.no_grad()
def encode_all(model: AutoEncoderBase, x: torch.Tensor, batch_size: int = 512,
               dtype: torch.dtype = torch.float32) -> np.ndarray:
    """The codes of `x` as float64, the encoder run in `dtype` (aebench.precision)."""
    with autocast(dtype, model.device):
        out = [model.encode(batch["x"]).float().cpu() for batch in iterate_batches({"x": x}, batch_size)]
    return torch.cat(out).numpy().astype(np.float64)


@torch.no_grad()
def decode_all(model: AutoEncoderBase, z: np.ndarray, batch_size: int = 512,
               dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Decoded `z` as float32, the decoder run in `dtype` (aebench.precision)."""
    zt = torch.as_tensor(z, dtype=torch.float32, device=model.device)
    with autocast(dtype, model.device):
        out = [model.decode(zt[i:i + batch_size]).float().cpu() for i in range(0, len(zt), batch_size)]
    return torch.cat(out).numpy()


@torch.no_grad()
def decode_paper_range(model: AutoEncoderBase, z: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """Images decoded from codes `z` in the ACAI paper's [-1, 1] range, unclamped: the model's
    `decode_raw(z)` where it has one (its output before the pipeline's [0, 1] clamp), else
    `2 decode(z) - 1`."""
    zt = torch.as_tensor(z, dtype=torch.float32, device=model.device)
    first = model.decode_raw(zt[:batch_size])
    if first is None:
        return 2.0 * decode_all(model, z, batch_size) - 1.0
    rest = [model.decode_raw(zt[i:i + batch_size]).cpu() for i in range(batch_size, len(zt), batch_size)]
    return torch.cat([first.cpu(), *rest]).numpy()


@dataclass(frozen=True)
class OodSet:
    """The test inputs of a dataset's out-of-distribution companion (model-ready) and its name."""

    name: str
    x: torch.Tensor


@dataclass
class EvalContext:
    """Everything a metric suite may use; codes are computed once, by the evaluator."""

    model: AutoEncoderBase
    train: Split
    test: Split
    test_x: torch.Tensor  # model-ready test inputs
    z_train: np.ndarray
    z_test: np.ndarray
    k: int
    seed: int
    plots: Path
    figure_examples: int
    max_recon: int = 2000
    cluster_paper_restarts: int = 10
    dtype: torch.dtype = torch.float32  # of the encoder/decoder passes and sampling (aebench.precision)
    gw_reference: str = "test"  # the split gw_distance compares the samples with: test or train
    gw_points: int | None = GW_POINTS  # cap on the size of each set of gw_distance (None: no cap)
    ood: OodSet | None = None  # the OoD companion's test inputs, where the dataset has one
    joint_probe: dict[str, torch.Tensor] | None = None  # the linear head trained with the model (`train.joint_probe`)

    @property
    def has_labels(self) -> bool:
        return bool((self.test.label >= 0).any()) and bool((self.train.label >= 0).any())

    @cached_property
    def train_x(self) -> torch.Tensor:
        """The (kept) training rows' model-ready inputs, on the model's device."""
        return split_tensors(self.train, self.model.device)["x"]

    @cached_property
    def train_inputs(self) -> np.ndarray:
        """The training split's inputs on the model's scale (pixels in [0, 1]), as numpy."""
        return self.train.x.astype(np.float32) / (255.0 if self.train.kind == "image" else 1.0)

    @cached_property
    def recon_rows(self) -> np.ndarray:
        """The test rows that are reconstructed: all, or a seeded `max_recon` of them (an
        autoregressive decoder samples H x W passes per image: 10,000 MNIST digits take an hour)."""
        n = len(self.z_test)
        if n <= self.max_recon:
            return np.arange(n)
        return np.sort(np.random.default_rng(self.seed).choice(n, self.max_recon, replace=False))

    @cached_property
    def x_hat(self) -> np.ndarray:
        """Reconstructions of the `recon_rows` test rows (float32), decoded under the seed (a
        stochastic decoder, e.g. a PixelCNN, samples)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return decode_all(self.model, self.z_test[self.recon_rows], dtype=self.dtype)

    @cached_property
    def neg_elbo_test(self) -> torch.Tensor | None:
        """Per-datum negative ELBO of the test inputs in nats (on the CPU, in the model's float
        type), its noise drawn under the seed; None for models without a likelihood."""
        with torch.no_grad():
            if self.model.neg_elbo(self.test_x[:2]) is None:
                return None
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                return torch.cat([self.model.neg_elbo(b["x"]).cpu()
                                  for b in iterate_batches({"x": self.test_x}, 512)])

    @property
    def figure_sample_count(self) -> int:
        """Samples in the figure: two rows of images, or a cloud of points."""
        return self.figure_examples * (2 if self.test.kind == "image" else 64)

    @property
    def gw_sample_count(self) -> int:
        """Samples gw_distance scores: as many as the points of the reference set it keeps (the
        authors compare equal-sized sets; the value depends on the size), at most `gw_points`."""
        n = len(self.train.index) if self.gw_reference == "train" else len(self.test_x)
        return n if self.gw_points is None else min(n, self.gw_points)

    @property
    def gw_reference_set(self) -> np.ndarray:
        """The real set gw_distance compares the samples with (`evaluate.gw_reference`): the test
        inputs, or the training inputs (the DVAE authors' protocol; at most `max_train_codes`)."""
        return self.train_inputs if self.gw_reference == "train" else self.test_x.cpu().numpy()

    @cached_property
    def samples(self) -> np.ndarray | None:
        """The model's samples (seeded), drawn once for the figures and the topology metrics: an
        autoregressive decoder pays H x W passes per draw. None for models that do not generate.
        A sampler that starts from data (DVAE's random walks under `walk_seeds: test_data`) is
        first handed the test inputs through its `start_sampling_from` hook."""
        self.model.start_sampling_from(self.test_x)
        with torch.random.fork_rng(devices=[]), autocast(self.dtype, self.model.device):
            torch.manual_seed(self.seed)
            gw_draw = self.gw_sample_count if self.gw_points is None else self.gw_points
            drawn = self.model.sample(max(gw_draw, self.figure_sample_count), torch.Generator().manual_seed(self.seed))
        return None if drawn is None else drawn.detach().float().cpu().numpy()
