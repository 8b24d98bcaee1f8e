"""benchmarks/paper_scale.py's bookkeeping, on fabricated runs: when a run is skipped for the
deadline, and what the summaries, the claim rows and the bundle hold. Nothing trains here;
the smoke run (`--smoke`) is the script's end-to-end check."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ps():
    spec = importlib.util.spec_from_file_location("paper_scale", REPO / "benchmarks" / "paper_scale.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_a_run_is_skipped_only_when_its_estimate_exceeds_the_time_left(ps):
    assert ps.should_skip(1e9, None) is None  # no deadline
    assert ps.should_skip(None, 10.0) is None  # no estimate: runs while time is left
    assert ps.should_skip(100.0, 100.5) is None
    assert "only 99 s were left" in ps.should_skip(100.0, 99.0)
    assert "deadline had passed" in ps.should_skip(None, -3.0)
    assert "deadline had passed" in ps.should_skip(1.0, 0.0)


def test_the_estimate_scales_the_calibrated_step_by_the_planned_steps(ps):
    train = ps.TrainConfig(epochs=2, batch_size=64, max_steps_per_epoch=None)
    assert ps.planned_steps(train, 54000) == 2 * 843
    assert ps.planned_steps(ps.TrainConfig(epochs=3, max_steps_per_epoch=10), 54000) == 30
    assert ps.estimate_seconds(None, 100) is None
    estimate = ps.estimate_seconds({"sec_per_step": 0.02, "decode_seconds": 1.5}, 1000)
    assert estimate == pytest.approx(0.02 * 1000 * ps.TRAIN_OVERHEAD + ps.EVAL_BASE_S + ps.EVAL_DECODES * 1.5)


def _fabricate(run_dir: Path, metrics: dict, steps: int) -> None:
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "run.json").write_text(json.dumps({"steps": steps, "batch_size": 64, "samples_seen": steps * 64,
                                                  "train_seconds": 12.5, "precision": "bf16", "sec_per_step": 0.01}))


def test_summary_claims_and_bundle_from_fabricated_metrics(ps, tmp_path):
    mirror = tmp_path / "mirror"
    for name in ("mnist", "omniglot"):
        (mirror / name).mkdir(parents=True)
    out, bundle = tmp_path / "out", tmp_path / "bundle"
    profile = ps.load_profile(REPO / "profiles" / "paper-scale-gwae.yaml", str(mirror), None, False, out)
    assert profile.runs == ["mnist-gwae_gmp", "mnist-vae"] and profile.mirror == str(mirror.resolve())
    _fabricate(profile.out / "mnist-gwae_gmp", {"ood_auroc": 0.91, "ood_auroc_flipped": 0.8, "neg_elbo": None}, 1686)
    _fabricate(profile.out / "mnist-vae", {"ood_auroc": 0.95, "ood_auroc_neg_elbo": 0.99, "neg_elbo": 101.5}, 1686)
    (profile.out / "mnist-vae-roc.png").write_bytes(b"png")
    profile.status = {"mnist-gwae_gmp": {"status": "done"},
                      "mnist-vae": {"status": "skipped", "reason": "estimated 90 s, but only 10 s were left"}}
    args = argparse.Namespace(smoke=False, deadline_seconds=480.0)
    env = {"torch": "2.11.0", "git_commit": None, "source_digest": "abc", "cpus": 16, "gpu": "NVIDIA H200"}

    text = ps.write_summary(profile, ps.DataCache(tmp_path / "scratch", False), args, env, "2026-12-04T00:00:00")
    summary = json.loads((profile.out / "summary.json").read_text())
    assert summary["runs"]["mnist-vae"]["status"] == "skipped"
    assert "| mnist-vae | skipped: estimated 90 s, but only 10 s were left | 1,686 |" in text
    assert summary["key_metrics"] == ["neg_elbo", "ood_auroc", "ood_auroc_neg_elbo", "ood_auroc_flipped"]
    assert "| - | 0.91 | - | 0.8 |" in text and "| 101.5 | 0.95 | 0.99 | - |" in text
    rows = {r["claim"]: r for r in json.loads((profile.out / "claims.json").read_text())}
    assert rows["gwae-gmp-ood"]["status"] == "inconclusive"  # 0.91 vs 0.95, but one seed a side
    assert rows["gwae-gmp-ood"]["budget_note"] == "equal: 107,904 samples each"
    assert rows["acn-pixelcnn"]["status"] == "not run"
    assert [r["claim"] for r in summary["claims"]][0] == "gwae-gmp-ood"  # only this profile's claims
    assert "| gwae-gmp-ood | mnist | inconclusive |" in text

    ps.write_bundle([profile], out, bundle)
    with tarfile.open(bundle / ps.TARBALL) as tar:
        names = set(tar.getnames())
    assert {"paper_scale/paper-scale-gwae/summary.md", "paper_scale/paper-scale-gwae/mnist-vae/run.json",
            "paper_scale/paper-scale-gwae/mnist-vae-roc.png"} <= names
    assert (bundle / "paper-scale-gwae.md").read_text() == text
    assert sorted(p.name for p in bundle.iterdir()) == ["paper-scale-gwae.md", ps.TARBALL]


def test_profile_errors_name_the_file_or_the_key(ps, tmp_path):
    with pytest.raises(ps.UserError, match="no such profile file"):
        ps.load_profile(tmp_path / "nope.yaml", None, None, False, tmp_path)
    with pytest.raises(ps.UserError, match=r"--mirror .*is not a folder"):
        ps.load_profile(REPO / "profiles" / "paper-scale-acn.yaml", str(tmp_path / "none"), None, False, tmp_path)
    with pytest.raises(ps.UserError, match=r"mnist is not a folder"):
        ps.load_profile(REPO / "profiles" / "paper-scale-acn.yaml", str(tmp_path), None, False, tmp_path)
    (tmp_path / "mnist").mkdir()
    with pytest.raises(ps.UserError, match="matches none of its runs"):
        ps.load_profile(REPO / "profiles" / "paper-scale-acn.yaml", str(tmp_path), ["gwae"], False, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text((REPO / "profiles" / "paper-scale-acn.yaml").read_text().replace("  epochs: 2", "  epoch: 2"))
    with pytest.raises(ps.UserError, match="train.epoch"):
        ps.load_profile(bad, str(tmp_path), None, False, tmp_path)
