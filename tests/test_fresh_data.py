"""`train.fresh_data`: training on new lines at every step, as the ACAI authors do, from the
same distribution as the stored split, reproducible and resumable, and refused where the
dataset has no generator or the model needs stored rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml

from aebench.config import TrainConfig
from aebench.data.datasets.common import TWO_PI, bins
from aebench.data.datasets.lines import draw_lines, fresh_lines, make_lines
from aebench.errors import UserError
from aebench.models import build_model
from aebench.models.base import DataInfo
from aebench.plan import load_params, run_stages
from aebench.training import epoch_batches, train

SHAPE = (1, 32, 32)


def test_fresh_lines_are_the_stored_lines_of_their_angles():
    """Pixels: the renderer quantised to 0..255 as `make_lines` stores them, read as a split is
    (/ 255 in float32); labels: the stored 10 angle bins; no stored row."""
    batch = fresh_lines(50, torch.Generator().manual_seed(3), SHAPE)
    angle = torch.rand(50, generator=torch.Generator().manual_seed(3), dtype=torch.float64).numpy() * TWO_PI
    stored = np.rint((draw_lines(angle, dtype=np.float64) + 1.0) / 2.0 * 255.0).clip(0, 255).astype(np.uint8)
    expected = torch.from_numpy(stored.astype(np.float32)).div_(255.0)[:, None]
    assert batch["x"].dtype == torch.float32 and batch["x"].shape == (50, *SHAPE)
    assert torch.equal(batch["x"], expected)
    assert torch.equal(batch["label"], torch.from_numpy(bins(angle, 0.0, TWO_PI, 10)))
    assert torch.equal(batch["group"], batch["label"])
    assert (batch["index"] == -1).all() and (batch["pos"] == -1).all()
    # the stored dataset's pixels of its own angles are the same function of the angle
    raw = make_lines(20, seed=1)
    again = np.rint((draw_lines(raw.factors["angle"], dtype=np.float64) + 1.0) / 2.0 * 255.0)
    assert np.array_equal(raw.x[:, 0], again.astype(np.uint8))


def test_fresh_lines_follow_the_generator():
    a, b = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    first, second = fresh_lines(16, a, SHAPE), fresh_lines(16, a, SHAPE)
    assert torch.equal(first["x"], fresh_lines(16, b, SHAPE)["x"])
    assert not torch.equal(first["x"], second["x"])  # every draw is new
    assert len(torch.unique(fresh_lines(2000, a, SHAPE)["label"])) == 10


INFO = DataInfo(SHAPE, "image", 10, 256)
CFG = TrainConfig(epochs=3, batch_size=16, lr=1e-3, patience=10, checkpoint_seconds=0, fresh_data=True,
                  max_steps_per_epoch=4)


def stored(n: int, seed: int) -> dict[str, torch.Tensor]:
    raw = make_lines(n, seed)
    label = torch.from_numpy(raw.label)
    return {"x": torch.from_numpy(raw.x.astype(np.float32) / 255.0), "label": label, "group": label.clone(),
            "index": torch.arange(n), "pos": torch.arange(n)}


def model():
    torch.manual_seed(7)
    return build_model("ae", {"latent_dim": 4, "width": 4}, INFO)


def test_epochs_draw_new_batches_the_stored_split_sets_their_number():
    data = stored(64, 0)
    batches = list(epoch_batches(model(), data, CFG, torch.Generator().manual_seed(0), fresh_lines))
    assert len(batches) == 4 and all(len(b["x"]) == 16 for b in batches)
    assert not any(torch.equal(b["x"], data["x"][:16]) for b in batches)
    uncapped = CFG.model_copy(update={"max_steps_per_epoch": None})
    assert len(list(epoch_batches(model(), data, uncapped, torch.Generator(), fresh_lines))) == 64 // 16


def crash_after(step_limit):
    def log_fn(metrics, step):
        if step > step_limit:
            raise KeyboardInterrupt("killed")
    return log_fn


def test_training_on_fresh_lines_resumes_to_the_same_weights(tmp_path):
    """The draws come from the trainer's checkpointed generator, so a run killed mid-way and
    resumed sees the same lines and ends with the same weights."""
    cfg = CFG.model_copy(update={"log_every": 1})
    reference = model()
    expected = train(reference, stored(64, 0), stored(32, 1), cfg, resume_path=tmp_path / "ref.pt",
                     fingerprint="fp", fresh=fresh_lines)
    assert expected.steps == 12 and expected.samples_seen == 12 * 16
    with pytest.raises(KeyboardInterrupt):
        train(model(), stored(64, 0), stored(32, 1), cfg, resume_path=tmp_path / "crash.pt", fingerprint="fp",
              fresh=fresh_lines, log_fn=crash_after(6))
    resumed = model()
    result = train(resumed, stored(64, 0), stored(32, 1), cfg, resume_path=tmp_path / "crash.pt",
                   fingerprint="fp", fresh=fresh_lines)
    assert result.resumed_from_epoch == 1
    assert [h["val_loss"] for h in result.history] == [h["val_loss"] for h in expected.history]
    assert all(torch.equal(p, q) for p, q in zip(reference.state_dict().values(), resumed.state_dict().values()))
    on_stored = train(model(), stored(64, 0), stored(32, 1), cfg.model_copy(update={"fresh_data": False}),
                      resume_path=tmp_path / "stored.pt", fingerprint="fp")
    assert on_stored.history[-1]["val_loss"] != expected.history[-1]["val_loss"]


def profile(tmp_path, dataset: str, model_name: str):
    params = {"datasets": [dataset], "models": [model_name], "seeds": [0],
              "runs": {f"{dataset}-{model_name}": {"dataset": dataset, "model": model_name,
                                                   "train": {"fresh_data": True}}}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_plan_refuses_fresh_data_without_a_generator_or_with_a_row_bound_model(tmp_path):
    with pytest.raises(UserError, match=r"run `digits-ae` sets `train.fresh_data`, but dataset `digits` has no "
                                        r"generator of fresh samples \(those that do: lines\)"):
        load_params(profile(tmp_path, "digits", "ae"))
    with pytest.raises(UserError, match=r"run `lines-acn` sets `train.fresh_data`, but its model \(type `acn`\) "
                                        r"looks its training rows up"):
        load_params(profile(tmp_path, "lines", "acn"))


def test_a_fresh_data_run_depends_on_its_generator(tmp_path):
    """Its training draws from the dataset's code, so editing that code retrains it."""
    deps = run_stages(load_params(profile(tmp_path, "lines", "ae")))["train-lines-ae"]["deps"]
    assert "src/aebench/data/datasets/lines.py" in deps
