"""DCI and MIG against known answers."""

from types import SimpleNamespace

import numpy as np
import pytest

from aebench.evaluation.suites import disentanglement_suite
from aebench.metrics.disentanglement import dci, dci_from_importance, discretise, mig


def _factors(n=600, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, 3, n), rng.choice(np.linspace(0.5, 1, 6), n), rng.uniform(0, 6.28, n),
                     rng.choice(np.linspace(0, 1, 16), n)], axis=1)


def test_dci_from_importance_known_answers():
    assert dci_from_importance(np.eye(4)) == pytest.approx((1.0, 1.0))
    assert dci_from_importance(np.ones((4, 3))) == pytest.approx((0.0, 0.0))
    # one code explains every factor: complete (each factor in one code) but not disentangled
    one = np.zeros((4, 3))
    one[2] = 1.0
    assert dci_from_importance(one) == pytest.approx((0.0, 1.0))
    # two codes per factor, each code pure: disentangled, completeness 1 - log 2 / log 4 = 0.5
    two = np.kron(np.eye(2), np.ones((2, 1)))
    assert dci_from_importance(two) == pytest.approx((1.0, 0.5))


def test_dci_identity_permuted_rescaled_and_independent():
    f = _factors()
    assert dci(f, f) == pytest.approx({"dci_disentanglement": 1.0, "dci_completeness": 1.0,
                                       "dci_informativeness": 1.0}, abs=0.02)
    rng = np.random.default_rng(1)
    codes = f[:, [2, 0, 3, 1]] * np.array([-3.0, 0.01, 7.0, 100.0]) + 5.0
    codes = np.concatenate([codes, rng.normal(size=(len(f), 4))], axis=1)  # plus pure-noise codes
    scores = dci(codes, f)
    assert scores["dci_disentanglement"] > 0.97 and scores["dci_completeness"] > 0.97
    independent = dci(rng.normal(size=(len(f), 8)), f)
    assert independent["dci_disentanglement"] < 0.3 and independent["dci_completeness"] < 0.3
    assert independent["dci_informativeness"] < 0.6
    # constant factors are dropped, a fully constant set is refused
    assert dci(f, np.concatenate([f, np.ones((len(f), 1))], axis=1))["dci_disentanglement"] > 0.97
    with pytest.raises(ValueError):
        dci(f, np.ones((len(f), 2)))


def test_dci_gbt_variant():
    f = _factors(300)[:, [0, 1]]
    rng = np.random.default_rng(0)
    good = dci(np.concatenate([f, rng.normal(size=(300, 2))], axis=1), f, method="gbt")
    assert good["dci_disentanglement"] > 0.9 and good["dci_informativeness"] > 0.95
    with pytest.raises(ValueError, match="unknown DCI method"):
        dci(f, f, method="lasso")


def test_discretise_and_mig():
    assert list(discretise([0.5, 0.1, 0.5, 0.9])) == [1, 0, 1, 2]  # few values: categories
    binned = discretise(np.linspace(0, 1, 1000))
    assert binned.min() >= 0 and len(np.unique(binned)) == 20
    f = _factors(2000)
    rng = np.random.default_rng(2)
    assert mig(f[:, [3, 1, 0, 2]] * 3 - 1, f) > 0.95
    duplicated = np.concatenate([f, f[:, :1]], axis=1)  # factor 0 in two codes: no gap for it
    per_factor = mig(duplicated, f[:, :1])
    assert per_factor == pytest.approx(0.0, abs=1e-9)
    assert mig(rng.normal(size=(2000, 6)), f) < 0.05


def test_suite_applies_only_with_factors():
    f = _factors(500)
    ctx = SimpleNamespace(test=SimpleNamespace(factors={"a": f[:, 0], "b": f[:, 3]}), z_test=f[:, [3, 0]], seed=0)
    out = disentanglement_suite(ctx)
    assert set(out) == {"dci_disentanglement", "dci_completeness", "dci_informativeness", "mig"}
    assert out["dci_disentanglement"] > 0.97 and out["mig"] > 0.9
    assert disentanglement_suite(SimpleNamespace(test=SimpleNamespace(factors={}), z_test=f, seed=0)) == {}


def test_forest_cut_at_a_depth_is_the_forest_grown_to_it():
    """DCI grows its forests once, at the deepest candidate depth, and reads shallower depths by
    cutting the trees: predictions and importances must be sklearn's for a forest grown to that
    depth (well-populated nodes: no ties between equally good splits)."""
    from sklearn.ensemble import RandomForestRegressor

    from aebench.metrics.disentanglement import _forest_importances, _forest_predict, _oob_mse

    rng = np.random.default_rng(0)
    z, z_new = rng.uniform(size=(4000, 5)), rng.uniform(size=(500, 5))
    y = np.sin(3 * z[:, 0]) * z[:, 1] + 0.2 * z[:, 2] + 0.05 * rng.normal(size=4000)
    deep = RandomForestRegressor(n_estimators=10, max_depth=12, random_state=0).fit(z, y)
    for depth in (1, 2, 4, 12):
        grown = RandomForestRegressor(n_estimators=10, max_depth=depth, random_state=0).fit(z, y)
        np.testing.assert_allclose(_forest_predict(deep, depth, z_new), grown.predict(z_new), atol=1e-12)
        np.testing.assert_allclose(_forest_importances(deep, depth), grown.feature_importances_, atol=1e-12)
    shallow = RandomForestRegressor(n_estimators=10, max_depth=2, random_state=0, oob_score=True).fit(z, y)
    seen = shallow.oob_prediction_ != 0  # sklearn predicts 0 for the ~1% no tree left out
    oob = np.mean((shallow.oob_prediction_[seen] - y[seen]) ** 2)  # sklearn's own out-of-bag error
    assert _oob_mse(deep, 2, z, y) == pytest.approx(oob, rel=1e-9)
