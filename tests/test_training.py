"""The training loop: determinism, resume after a crash, early stopping, the NaN guard."""

import math

import pytest
import torch

from aebench.config import TrainConfig
from aebench.errors import TrainingDiverged
from aebench.models import build_model
from aebench.models.base import DataInfo
from aebench.batching import iterate_batches
from aebench.training import train

INFO = DataInfo((1, 8, 8), "image", 10, 256)


def data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(n, 1, 8, 8, generator=g), "label": torch.randint(0, 10, (n,), generator=g),
            "group": torch.zeros(n, dtype=torch.long), "index": torch.arange(n), "pos": torch.arange(n)}


def fresh(model_type="vae"):
    torch.manual_seed(123)
    return build_model(model_type, {"latent_dim": 4, "width": 4}, INFO)


CFG = TrainConfig(epochs=4, batch_size=32, lr=1e-3, patience=10, log_every=3, checkpoint_seconds=0)


def run(tmp_path, model, cfg=CFG, log_fn=None, name="r.pt"):
    return train(model, data(256, 0), data(64, 1), cfg, resume_path=tmp_path / name, fingerprint="fp", log_fn=log_fn)


def test_same_seed_same_weights(tmp_path):
    a, b = fresh(), fresh()
    ra = run(tmp_path, a, name="a.pt")
    rb = run(tmp_path, b, name="b.pt")
    assert ra.best_val_loss == rb.best_val_loss
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert ra.epochs_run == 4 and ra.samples_per_s > 0
    assert [h["epoch"] for h in ra.history] == [1, 2, 3, 4]


def crash_in_epoch_three(metrics, step):
    if step > 2 * (256 // 32) + 2:  # mid-way through epoch 3
        raise KeyboardInterrupt("killed")


def test_resume_after_crash_matches_uninterrupted_run(tmp_path):
    reference = fresh()
    expected = run(tmp_path, reference, name="ref.pt")

    crashing = fresh()
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, crashing, log_fn=crash_in_epoch_three, name="crash.pt")
    assert (tmp_path / "crash.pt").exists()

    resumed = fresh()
    result = run(tmp_path, resumed, name="crash.pt")
    assert result.resumed_from_epoch == 2
    assert result.best_val_loss == expected.best_val_loss
    assert [h["val_loss"] for h in result.history] == [h["val_loss"] for h in expected.history]
    assert all(torch.equal(p, q) for p, q in zip(reference.state_dict().values(), resumed.state_dict().values()))


def test_checkpoints_wait_for_checkpoint_seconds(tmp_path):
    """Within the interval no epoch is checkpointed, so a crash restarts from scratch, to the
    same result (with 0, every epoch is: the test above)."""
    expected = run(tmp_path, fresh(), name="ref.pt")
    patient = CFG.model_copy(update={"checkpoint_seconds": 3600.0})
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, fresh(), cfg=patient, log_fn=crash_in_epoch_three, name="crash.pt")
    assert not (tmp_path / "crash.pt").exists()
    result = run(tmp_path, fresh(), cfg=patient, name="crash.pt")
    assert result.resumed_from_epoch == 0 and result.best_val_loss == expected.best_val_loss


def test_resume_ignored_for_other_fingerprint(tmp_path):
    run(tmp_path, fresh(), cfg=CFG.model_copy(update={"epochs": 1}), name="x.pt")
    result = train(fresh(), data(256, 0), data(64, 1), CFG, resume_path=tmp_path / "x.pt", fingerprint="other")
    assert result.resumed_from_epoch == 0 and result.epochs_run == 4


def poisoned_at_step_10():
    """A fresh model whose loss turns NaN at step 10 (epoch 2)."""
    model = fresh()
    original = model.train_step

    def poisoned(batch, optimizers, step):
        out = original(batch, optimizers, step)
        if step == 10:
            out["loss"] = torch.tensor(math.nan)
        return out

    model.train_step = poisoned
    return model


def test_nan_loss_stops_with_clear_error(tmp_path):
    model = poisoned_at_step_10()
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2.*train.lr"):
        run(tmp_path, model, name="nan.pt")
    state = torch.load(tmp_path / "nan.pt", weights_only=True)
    assert state["epoch"] == 1  # the last good epoch is kept for inspection


def test_early_stopping_restores_best_weights(tmp_path):
    model = fresh("ae")
    cfg = TrainConfig(epochs=30, batch_size=32, lr=1e-12, patience=2)  # nothing improves after epoch 1
    result = run(tmp_path, model, cfg=cfg, name="es.pt")
    assert result.stopped_early and result.epochs_run < 30
    best = min(h["val_loss"] for h in result.history)
    assert result.best_val_loss == best


def test_iterate_batches_cover_and_shuffle():
    d = data(100, 0)
    ordered = list(iterate_batches(d, 32))
    assert sum(len(b["x"]) for b in ordered) == 100 and len(ordered) == 4
    shuffled = list(iterate_batches(d, 32, torch.Generator().manual_seed(0)))
    assert len(shuffled) == 3  # the last short batch is dropped when training
    idx = torch.cat([b["index"] for b in shuffled])
    assert len(set(idx.tolist())) == 96 and not torch.equal(idx, torch.arange(96))
    assert len(list(iterate_batches(d, 32, torch.Generator().manual_seed(0), max_steps=2))) == 2


def test_terms_read_at_the_logging_interval_train_the_same(tmp_path, monkeypatch):
    """An accelerator reads the loss terms every `log_every` steps (faked here on the CPU):
    the same weights and validation losses, train losses equal up to the order of the sums,
    and a NaN still stops the run, naming the steps of the window it was read in."""
    import aebench.training as training

    reference = fresh()
    expected = run(tmp_path, reference, name="ref.pt")
    monkeypatch.setattr(training, "loss_read_interval", lambda device, log_every: log_every)
    deferred = fresh()
    result = run(tmp_path, deferred, name="deferred.pt")
    assert [h["val_loss"] for h in result.history] == [h["val_loss"] for h in expected.history]
    assert [h["train_loss"] for h in result.history] == pytest.approx([h["train_loss"] for h in expected.history])
    assert all(torch.equal(p, q) for p, q in zip(reference.state_dict().values(), deferred.state_dict().values()))

    model = poisoned_at_step_10()
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2, steps 9-11"):
        run(tmp_path, model, name="nan.pt")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_resume_on_a_gpu_matches_uninterrupted_run(tmp_path):
    """The CUDA generator's state is checkpointed too (the VAE draws its noise on the GPU)."""
    def on_gpu(n, seed):
        return {k: v.cuda() for k, v in data(n, seed).items()}

    def go(model, name, log_fn=None):
        return train(model, on_gpu(256, 0), on_gpu(64, 1), CFG, resume_path=tmp_path / name, fingerprint="fp",
                     log_fn=log_fn)

    reference = fresh()
    expected = go(reference, "ref.pt")
    with pytest.raises(KeyboardInterrupt):
        go(fresh(), "crash.pt", log_fn=crash_in_epoch_three)
    resumed = fresh()
    result = go(resumed, "crash.pt")
    assert result.resumed_from_epoch == 2
    assert [h["val_loss"] for h in result.history] == [h["val_loss"] for h in expected.history]
    assert all(torch.equal(p, q) for p, q in zip(reference.state_dict().values(), resumed.state_dict().values()))
