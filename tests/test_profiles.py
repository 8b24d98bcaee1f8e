"""Params profiles (aebench.profiles): the committed profiles validate, a relative mirror is
made absolute for the worktree, and the results a reader needs are collected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aebench.config import load_params
from aebench.errors import UserError
from aebench.profiles import collect, profile_params, profile_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("profile", sorted((ROOT / "profiles").glob("*.yaml")), ids=lambda p: p.stem)
def test_committed_profiles_validate(profile):
    params = load_params(profile)
    assert params.runs


def test_unknown_profile_names_the_known_ones(tmp_path):
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "paper.yaml").write_text("datasets: [digits]\n")
    with pytest.raises(UserError, match="no profile `nope`.*known: paper"):
        profile_path("nope", tmp_path)


def test_relative_mirror_is_made_absolute_against_the_checkout(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("datasets: [mnist]  # real data\ndata:\n  seed: 0\n  mirror: ../shared/data   # verified copies\n")
    text = profile_params(profile, tmp_path / "repo")
    assert yaml.safe_load(text)["data"]["mirror"] == str((tmp_path / "shared" / "data").resolve())
    assert "# verified copies" in text and "# real data" in text  # the rest of the file is kept as written
    for mirror in ("https://example.org/data", "/abs/data"):
        profile.write_text(f"data:\n  mirror: {mirror}\n")
        assert yaml.safe_load(profile_params(profile, tmp_path))["data"]["mirror"] == mirror


def test_collect_copies_summary_links_claims_and_run_records(tmp_path):
    tree, out = tmp_path / "tree", tmp_path / "results" / "paper"
    (tree / "reports").mkdir(parents=True)
    (tree / "eval" / "mnist" / "vae" / "plots").mkdir(parents=True)
    (tree / "models" / "mnist" / "vae").mkdir(parents=True)
    (tree / "eval" / "mnist" / "vae" / "plots" / "roc.png").write_bytes(b"png")
    (tree / "eval" / "mnist" / "vae" / "metrics.json").write_text('{"knn_acc": 0.9}')
    (tree / "models" / "mnist" / "vae" / "run.json").write_text('{"steps": 10}')
    (tree / "models" / "mnist" / "vae" / "checkpoint.pt").write_bytes(b"big")
    (tree / "reports" / "summary.md").write_text("![roc](../eval/mnist/vae/plots/roc.png) [gone](../eval/x.png)\n")
    (tree / "reports" / "claims.json").write_text("[]")
    (tree / "reports" / "claims.md").write_text("| claims |")
    profile = tmp_path / "paper.yaml"
    profile.write_text("datasets: [mnist]\n")
    (out / "stale").mkdir(parents=True)
    import subprocess

    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    subprocess.run(["git", "-C", str(tree), "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)
    collect(tree, out, profile, 12.34)
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["claims.json", "claims.md", "eval/mnist/vae/metrics.json", "eval/mnist/vae/plots/roc.png",
                     "models/mnist/vae/run.json", "params.yaml", "provenance.json", "summary.md"]
    assert (out / "summary.md").read_text().startswith("![roc](eval/mnist/vae/plots/roc.png)")
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["wall_seconds"] == 12.3 and len(provenance["commit"]) == 40
    assert {"date", "machine", "gpu"} <= set(provenance)
