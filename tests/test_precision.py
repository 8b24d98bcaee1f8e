"""Mixed precision: resolving fp32/bf16/auto, the autocast context, and training and
evaluating under bf16 with fp32 master weights, optimiser state and loss reductions."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from aebench import precision
from aebench.config import EvalConfig, TrainConfig
from aebench.errors import UserError
from aebench.evaluation.context import decode_all, encode_all
from aebench.models import build_model
from aebench.models.base import DataInfo
from aebench.precision import autocast, native_bf16, resolve
from aebench.training import train

REPO = Path(__file__).resolve().parents[1]

INFO = DataInfo((1, 8, 8), "image", 10, 256)
BF16 = torch.bfloat16


@pytest.fixture
def bf16_here(monkeypatch):
    """Pretend the CPU has native bf16: the arithmetic is the same where torch emulates it."""
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)


@pytest.fixture
def no_bf16_here(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)


def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(n, 1, 8, 8, generator=g), "label": torch.randint(0, 10, (n,), generator=g),
            "group": torch.randint(0, 4, (n,), generator=g), "index": torch.arange(n), "pos": torch.arange(n)}


def fresh(model_type="vae"):
    torch.manual_seed(123)
    return build_model(model_type, {"latent_dim": 4, "width": 4}, INFO)


def fit(tmp_path, model, precision_name):
    cfg = TrainConfig(epochs=2, batch_size=32, patience=10, checkpoint_seconds=0, precision=precision_name)
    return train(model, data(128, 0), data(64, 1), cfg, resume_path=tmp_path / f"{precision_name}.pt",
                 fingerprint="fp")


# -- resolving ---------------------------------------------------------------------------
def test_fp32_needs_nothing(no_bf16_here):
    assert resolve("fp32", "cpu") == torch.float32


def test_auto_follows_the_hardware(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device: True)
    assert resolve("auto", "cpu") == BF16
    monkeypatch.setattr(precision, "native_bf16", lambda device: False)
    assert resolve("auto", "cpu") == torch.float32


def test_explicit_bf16_without_hardware_names_the_key(no_bf16_here):
    with pytest.raises(UserError, match=r"`train\.precision` is bf16.*set `train\.precision` to `auto` or `fp32`"):
        resolve("bf16", "cpu")
    with pytest.raises(UserError, match=r"`evaluate\.precision`"):
        resolve("bf16", "cpu", key="evaluate.precision")


def test_train_stops_on_bf16_without_hardware(tmp_path, no_bf16_here):
    with pytest.raises(UserError, match=r"train\.precision"):
        fit(tmp_path, fresh(), "bf16")


def test_cpu_support_is_read_from_torch_capabilities(monkeypatch):
    caps = {"avx512_f": True, "avx512_bf16": False, "amx_bf16": False}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: caps)
    assert not native_bf16("cpu")  # AVX-512 alone only emulates bf16
    caps["amx_bf16"] = True
    assert native_bf16("cpu")
    assert not native_bf16("meta")


@pytest.mark.parametrize("capabilities, expected", [
    ({"avx2": True, "avx512_f": False, "avx512_bf16": False, "amx_bf16": False}, "fp32"),  # AVX2 only
    ({"avx2": True, "avx512_f": True, "avx512_bf16": False, "amx_bf16": False}, "fp32"),  # AVX-512 emulates
    ({"avx2": True, "avx512_f": True, "avx512_bf16": True, "amx_bf16": False}, "bf16"),
], ids=["avx2", "avx512", "avx512-bf16"])
def test_every_run_of_the_paper_profile_picks_its_precision_from_the_cpu(monkeypatch, tmp_path, capabilities,
                                                                         expected):
    """`auto` through the whole path a run takes (the profile, the run's resolved train section,
    the trainer), with torch's CPU feature detection faked: bf16 only where it is native. The
    default params.yaml says fp32 and gets it on every machine."""
    from aebench.plan import load_params, resolve_model

    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: capabilities)
    for path, wanted in ((REPO / "profiles" / "paper.yaml", expected), (REPO / "params.yaml", "fp32")):
        params = load_params(path)
        chosen = {}
        for key, run in params.runs.items():
            _, _, train_cfg = resolve_model(params, run.model, path, run=key)
            chosen[key] = "bf16" if resolve(train_cfg.precision, "cpu") == torch.bfloat16 else "fp32"
        assert set(chosen.values()) == {wanted}, (path.name, chosen)
    assert fit(tmp_path, fresh(), "auto").precision == expected


def test_cuda_support_is_read_from_torch(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation)
    assert native_bf16("cuda")  # asks for native support, not emulation
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not native_bf16("cuda")


def test_defaults_and_eval_precision_can_follow_train():
    assert TrainConfig().precision == "fp32"
    assert EvalConfig().precision_for(TrainConfig(precision="bf16")) == ("fp32", "evaluate.precision")
    assert EvalConfig(precision="train").precision_for(TrainConfig(precision="auto")) == ("auto", "train.precision")


def test_bf16_codes_break_distance_ratio_metrics_which_is_why_evaluation_defaults_to_fp32():
    """A map that doubles distances has bi-Lipschitz constant 2; rounded to bf16 (8-bit
    mantissa: steps of 1/16 near 10) close codes coincide and the constant explodes."""
    import numpy as np

    from aebench.metrics.topology import bilipschitz

    z = np.linspace(10.0, 10.5, 200)[:, None]
    assert bilipschitz(z, 2 * z, k=5) == pytest.approx(2.0)
    rounded = torch.from_numpy(z).to(torch.bfloat16).double().numpy()
    assert bilipschitz(rounded, 2 * z, k=5) > 1e6


# -- the autocast context ----------------------------------------------------------------
def test_autocast_computes_bf16_and_reduces_in_fp32():
    layer = torch.nn.Linear(8, 8)
    x = torch.randn(4, 8)
    with autocast(BF16, "cpu"):
        y = layer(x)
        assert y.dtype == BF16
        assert y.sum().dtype == y.mean(1).dtype == y.pow(2).sum(1).dtype == torch.float32
    assert layer(x).dtype == torch.float32  # off again outside


def test_autocast_widens_writes_into_fp32_state():
    table = torch.zeros(4, 3)
    with autocast(BF16, "cpu"):
        table.index_copy_(0, torch.tensor([1]), torch.ones(1, 3, dtype=BF16))
        table.index_add_(0, torch.tensor([2]), torch.ones(1, 3, dtype=BF16))
    assert table.dtype == torch.float32 and table[1:3].sum() == 6


def test_fp32_context_changes_nothing():
    with autocast(torch.float32, "cpu"):
        assert torch.nn.Linear(2, 2)(torch.randn(1, 2)).dtype == torch.float32


# -- training and evaluation under bf16 --------------------------------------------------
def test_bf16_training_is_close_to_fp32_and_keeps_fp32_masters(tmp_path, bf16_here):
    reference, model = fresh(), fresh()
    ref = fit(tmp_path, reference, "fp32")
    got = fit(tmp_path, model, "bf16")
    assert got.precision == "bf16" and ref.precision == "fp32"
    assert all(math.isfinite(h["train_loss"]) and math.isfinite(h["val_loss"]) for h in got.history)
    assert got.best_val_loss != ref.best_val_loss  # bf16 did run: its rounding shows
    assert got.best_val_loss == pytest.approx(ref.best_val_loss, rel=1e-3)
    assert {v.dtype for v in model.state_dict().values() if v.is_floating_point()} == {torch.float32}


@pytest.mark.parametrize("model_type", ["acai", "acn", "vqvae"])
def test_custom_steps_and_model_state_under_bf16(tmp_path, bf16_here, model_type):
    """Models with their own train_step (critics), a code table (ACN) or an EMA codebook
    (VQ-VAE) train under bf16 unchanged; weights, buffers and the optimisers' state stay fp32."""
    model = fresh(model_type)
    optimizers = model.optimizers(1e-3)
    batch = data(32, 0)
    model.on_epoch_start(0, batch["x"])
    with autocast(BF16, "cpu"):
        terms = model.train_step(batch, optimizers, 0)
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in terms.values())
    assert {v.dtype for v in model.state_dict().values() if v.is_floating_point()} == {torch.float32}
    moments = [v for o in optimizers for s in o.state.values() for v in s.values()
               if torch.is_tensor(v) and v.is_floating_point()]
    assert moments and {m.dtype for m in moments} == {torch.float32}


def test_eval_passes_under_bf16_return_float_codes_close_to_fp32():
    model = fresh().eval()
    x = data(64, 2)["x"]
    z32, z16 = encode_all(model, x), encode_all(model, x, dtype=BF16)
    assert z16.dtype == np.float64 and np.allclose(z16, z32, atol=0.05)
    x32, x16 = decode_all(model, z32), decode_all(model, z32, dtype=BF16)
    assert x16.dtype == np.float32 and np.allclose(x16, x32, atol=0.02)


def test_pixelcnn_sampling_under_bf16_matches_fp32_draws():
    """The autoregressive decoder's H x W sequential passes run under bf16 too; with the same
    uniforms, the binarised draws agree with fp32's except where a logit sits on the edge."""
    torch.manual_seed(0)
    config = {"latent_dim": 4, "width": 4, "decoder": "pixelcnn", "pixelcnn": {"layers": 2, "channels": 8}}
    model = build_model("vae", config, INFO).eval()
    z = np.random.default_rng(0).normal(size=(8, 4))
    draws = []
    for dtype in (torch.float32, BF16):
        torch.manual_seed(0)
        draws.append(decode_all(model, z, dtype=dtype))
    assert draws[1].dtype == np.float32 and set(np.unique(draws[1])) <= {0.0, 1.0}
    assert (draws[0] == draws[1]).mean() > 0.95
