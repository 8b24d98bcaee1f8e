"""OoD AUROC and ROC curve against known answers, and the evaluation suite on tiny models."""

import csv
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from aebench.evaluation.context import OodSet
from aebench.evaluation.suites import ood_suite
from aebench.metrics.ood import auroc, gaussian_nll, roc_curve
from aebench.models import build_model
from aebench.models.base import DataInfo


def test_auroc_known_answers():
    assert auroc([0.1, 0.2, 0.3], [0.5, 0.9]) == 1.0
    assert auroc([0.5, 0.9], [0.1, 0.2, 0.3]) == 0.0
    assert auroc([1.0, 1.0], [1.0, 1.0, 1.0]) == 0.5
    # out 0.8 beats all three in-scores; out 0.35 beats 0.1, ties 0.35, loses to 0.4: (3 + 1.5) / 6
    assert auroc([0.1, 0.4, 0.35], [0.8, 0.35]) == pytest.approx(0.75)
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(size=300).round(1), rng.normal(0.7, 1, size=200).round(1)
    y = np.r_[np.zeros(300), np.ones(200)]
    assert auroc(s_in, s_out) == pytest.approx(roc_auc_score(y, np.r_[s_in, s_out]), abs=1e-12)
    with pytest.raises(ValueError):
        auroc([], [1.0])
    with pytest.raises(ValueError):
        auroc([np.nan], [1.0])


def test_roc_curve_points():
    rng = np.random.default_rng(1)
    s_in, s_out = rng.normal(size=100).round(1), rng.normal(1, 1, size=80).round(1)
    fpr, tpr, thr = roc_curve(s_in, s_out)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all() and (np.diff(thr) < 0).all()
    assert np.trapezoid(tpr, fpr) == pytest.approx(auroc(s_in, s_out), abs=1e-12)
    sk_fpr, sk_tpr, _ = sk_roc_curve(np.r_[np.zeros(100), np.ones(80)], np.r_[s_in, s_out], drop_intermediate=False)
    assert np.allclose(fpr, sk_fpr) and np.allclose(tpr, sk_tpr)


def test_gaussian_nll():
    assert gaussian_nll(np.zeros((1, 4)))[0] == pytest.approx(2 * math.log(2 * math.pi))
    assert gaussian_nll(np.array([[3.0, 0.0]]))[0] == pytest.approx(4.5 + math.log(2 * math.pi))


def _ctx(model, x_in, x_out, tmp_path, kind="vector"):
    with torch.no_grad():
        z_test = model.encode(x_in).double().numpy()  # the evaluator's test codes
        neg_elbo = None  # the likelihood suite's, as the evaluator's context shares it
        if model.neg_elbo(x_in[:2]) is not None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                neg_elbo = model.neg_elbo(x_in)
    return SimpleNamespace(model=model, test_x=x_in, z_test=z_test, seed=0, plots=tmp_path / "plots",
                           test=SimpleNamespace(kind=kind),
                           neg_elbo_test=neg_elbo, ood=None if x_out is None else OodSet("toy", x_out))


class _Shift(torch.nn.Module):
    """A stand-in model: the code is the mean pixel, no score_ood and no likelihood."""

    def encode(self, x):
        return x.flatten(1).mean(1, keepdim=True)

    def score_ood(self, x):
        return None

    def neg_elbo(self, x):
        return None


def test_suite_scores_and_files(tmp_path):
    torch.manual_seed(0)
    x_in, x_out = torch.rand(40, 1, 8, 8) * 0.1, torch.rand(90, 1, 8, 8) * 0.1 + 0.5
    assert ood_suite(_ctx(_Shift(), x_in, None, tmp_path)) == {}
    # fallback: -log N(code; 0, I) is larger for the brighter OoD set
    assert ood_suite(_ctx(_Shift(), x_in, x_out, tmp_path)) == {"ood_auroc": 1.0}
    assert (tmp_path / "plots" / "roc.png").stat().st_size > 0
    rows = list(csv.reader((tmp_path / "plots" / "roc.csv").open()))
    assert rows[0] == ["score", "fpr", "tpr", "threshold"] and rows[1] == ["-log N(encode(x); 0, I) vs toy", "0", "0", "inf"]

    info = DataInfo((1, 8, 8), "image", 10, 100)
    vae = build_model("vae", {"latent_dim": 3, "width": 8}, info).eval()
    out = ood_suite(_ctx(vae, x_in, x_out, tmp_path, kind="image"))
    assert set(out) == {"ood_auroc", "ood_auroc_neg_elbo", "ood_auroc_flipped", "ood_auroc_neg_elbo_flipped"}
    gwae = build_model("gwae", {"latent_dim": 3, "width": 8, "critic_hidden": 16}, info).eval()
    out = ood_suite(_ctx(gwae, x_in, x_out, tmp_path))
    with torch.no_grad():
        expected = auroc(gwae.score_ood(x_in).numpy(), gwae.score_ood(x_out[:40]).numpy())
    assert set(out) == {"ood_auroc"}
    # the OoD set is subsampled to the in-distribution size; the critic is the score
    assert 0.0 <= out["ood_auroc"] <= 1.0 and abs(out["ood_auroc"] - expected) < 0.25
    assert "score_ood" in (tmp_path / "plots" / "roc.csv").read_text()
    with pytest.raises(ValueError, match="same shape"):
        ood_suite(_ctx(vae, x_in, torch.rand(5, 1, 4, 4), tmp_path))


def test_flipped_companion_removes_the_brightness_cue(tmp_path):
    """A companion that is the test set with its polarity flipped: brightness separates it
    perfectly, and flipped back it is the test set itself, so its AUROC is exactly chance."""
    torch.manual_seed(0)
    x_in = torch.randint(0, 3, (50, 1, 8, 8)) / 8.0  # dyadic: 1 - (1 - x) == x exactly
    out = ood_suite(_ctx(_Shift(), x_in, 1.0 - x_in, tmp_path, kind="image"))
    assert out == {"ood_auroc": 1.0, "ood_auroc_flipped": 0.5}
    labels = {row[0] for row in csv.reader((tmp_path / "plots" / "roc.csv").open())}
    assert labels == {"score", "-log N(encode(x); 0, I) vs toy", "-log N(encode(x); 0, I) vs toy, flipped"}
    # vectors have no polarity: no flipped key
    assert set(ood_suite(_ctx(_Shift(), x_in.flatten(1), 1.0 - x_in.flatten(1), tmp_path))) == {"ood_auroc"}
