"""Params profiles (aebench.profiles): the committed profiles validate, a relative mirror is
made absolute for the worktree, and the results a reader needs are collected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from aebench.plan import load_params
from aebench.errors import UserError
from aebench.profiles import collect, profile_params, profile_path
from aebench.report.time_use import render

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
    (tree / "eval" / "mnist" / "vae" / "seed0" / "plots").mkdir(parents=True)
    (tree / "models" / "mnist" / "vae" / "seed0").mkdir(parents=True)
    (tree / "eval" / "mnist" / "vae" / "seed0" / "plots" / "roc.png").write_bytes(b"png")
    (tree / "eval" / "mnist" / "vae" / "seed0" / "metrics.json").write_text('{"knn_acc": 0.9, "eval_seconds": 2.5}')
    (tree / "models" / "mnist" / "vae" / "seed0" / "run.json").write_text('{"steps": 10, "train_seconds": 4.0}')
    (tree / "models" / "mnist" / "vae" / "seed0" / "checkpoint.pt").write_bytes(b"big")
    (tree / "reports" / "figures").mkdir()
    (tree / "reports" / "figures" / "curves.png").write_bytes(b"png")
    (tree / "reports" / "summary.md").write_text("![roc](../eval/mnist/vae/seed0/plots/roc.png) [gone](../eval/x.png)\n"
                                                 "![curves](figures/curves.png) [site](https://example.org/x.png)\n")
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
    collect(tree, out, profile, 5.0)  # a resumed run: both are recorded
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["claims.json", "claims.md", "eval/mnist/vae/seed0/metrics.json", "eval/mnist/vae/seed0/plots/roc.png",
                     "figures/curves.png", "models/mnist/vae/seed0/run.json", "params.yaml", "provenance.json",
                     "summary.md", "time.md"]
    assert (out / "summary.md").read_text().startswith("![roc](eval/mnist/vae/seed0/plots/roc.png)")
    provenance = json.loads((out / "provenance.json").read_text())
    assert provenance["wall_seconds"] == 5.0 and len(provenance["commit"]) == 40
    assert [r["wall_seconds"] for r in provenance["runs"]] == [12.3, 5.0]
    assert {"date", "machine", "gpu"} <= set(provenance) and "report" not in provenance
    time_md = (out / "time.md").read_text()  # rewritten with every run collected, from what it copied
    assert "17 s of wall time; training 4 s (23%), evaluation 2 s (14%)" in time_md
    assert "| mnist-vae | 1 | 4 | 2 | 6 |" in time_md
    (out / "time.md").write_text(time_md + "| topology | 3 | mnist-vae 3 |\n")  # the suites from the runs' logs
    collect(tree, out, profile, None, report_commit="abc1234")  # a re-rendered report logs no run
    provenance = json.loads((out / "provenance.json").read_text())
    assert [r["wall_seconds"] for r in provenance["runs"]] == [12.3, 5.0] and provenance["wall_seconds"] == 5.0
    assert provenance["report"]["commit"] == "abc1234"
    assert provenance["machine"] == provenance["runs"][-1]["machine"]  # the runs', not the re-rendering machine's
    assert (out / "time.md").read_text().endswith("| topology | 3 | mnist-vae 3 |\n")  # kept: nothing ran


def test_time_md_adds_the_suites_a_caller_read_from_logs():
    runs = {("mnist", "vae"): {"seeds": 2, "train": 10.0, "evaluate": 6.0}}
    text = render("paper", runs, {"runs": [{"wall_seconds": 20.0, "machine": "m"}]},
                  {"topology": {"mnist-vae": 3.0, "mnist-acn": 1.0}, "figures": {"mnist-vae": 0.5}})
    assert "| mnist-vae | 2 | 10 | 6 | 8 |" in text
    assert text.index("| topology | 4 | mnist-vae 3, mnist-acn 1 |") < text.index("| figures | 0 | mnist-vae 0 |")
    assert "Evaluation suites" not in render("paper", runs, {})


def test_paper_profile_carries_the_papers_settings():
    """The values the authors' code uses (PAPERS.md, the config fields' descriptions)."""
    from aebench.plan import resolve_model

    path = ROOT / "profiles" / "paper.yaml"
    params = load_params(path)

    def model(name, run):
        _, config, train = resolve_model(params, name, path, run=run)
        return config, train

    acai, _ = model("acai", "mnist-acai")
    baseline, _ = model("paper_ae", "mnist-paper_ae")
    family = ("acai", "paper_ae", "paper_vae", "dropout_ae", "denoising_ae", "aae", "vqvae")  # brain-research/acai
    for name in family:  # every ACAI baseline of Tables 2-3 on the same nets, learning rate and probe
        config, train = model(name, f"mnist-{name}")
        assert (config.arch, config.width, config.latent_dim, config.latent_side, config.pad_to) == ("acai", 16, 32, 4, 32)
        assert (train.lr, train.batch_size, train.joint_probe, train.joint_probe_lr) == (1e-4, 64, True, 1e-4)
    assert (acai.advweight, acai.reg) == (0.5, 0.2) and baseline.keep_prob == 1.0
    for name in ("acai", "paper_ae"):  # Table 1: 32x32 lines (no padding), latent 2x2x16
        config, train = model(name, f"lines-{name}")
        assert (config.width, config.latent_dim, config.latent_side, config.pad_to, train.lr) == (16, 64, 2, None, 1e-4)
    assert model("dropout_ae", "mnist-dropout_ae")[0].keep_prob == 0.5
    assert model("denoising_ae", "mnist-denoising_ae")[0].noise == 1.0
    vqvae = model("vqvae", "mnist-vqvae")[0]
    assert (vqvae.z_log_size, vqvae.beta, vqvae.num_latents) == (14, 10.0, 10)
    gwae, gwae_train = model("gwae_gmp", "mnist-gwae_gmp")  # ganmodokix/gwae
    assert (gwae_train.lr, gwae.critic_lr, gwae.critic_steps, gwae.latent_dim, gwae_train.batch_size) == (1e-4, 1e-4, 5, 64, 64)
    for name in ("acn", "vae", "acn_pixelcnn", "vae_pixelcnn"):  # binarised MNIST for both decoders
        assert model(name, f"mnist-{name}")[0].binarize
    assert model("acn", "mnist-acn")[0].neighbours == 5
    mlvae, mlvae_train = model("mlvae", "mnist-mlvae")  # DianeBouchacourt/multi-level-vae
    assert (mlvae_train.batch_size, mlvae_train.lr, mlvae.arch, mlvae.hidden, mlvae.content_dim, mlvae.style_dim) == \
        (256, 1e-3, "paper", 500, 10, 10)
    assert (mlvae.probe, mlvae.probe_lr, mlvae.probe_batch_size, mlvae.probe_input) == ("mlp", 1e-4, 128, "sample")
    dvae, dvae_train = model("dvae", "loop-dvae")  # lihenryhfl/SpectralVAEGAN
    assert (dvae.local_cov, dvae.recon_loss, dvae.walk_seeds, dvae_train.lr) == ("uncentred", "mse", "test_data", 1e-3)
    assert all(params.data.options[d].variant == "paper" for d in ("loop", "sphere", "torus"))
    for manifold in ("loop", "sphere", "torus"):  # the full batch, the VAE the same steps
        n_train = round(params.data.options[manifold].n * (1 - params.data.val_fraction - params.data.test_fraction))
        trains = [model(name, f"{manifold}-{name}")[1] for name in ("dvae", "vae")]
        assert [(t.batch_size, t.epochs, t.max_steps_per_epoch) for t in trains] == [(n_train, 400, None)] * 2
    assert params.data.options["omniglot"].invert is False and params.evaluate.ood_companion == {"mnist": "omniglot"}
    assert params.evaluate.gw_reference == "train" and params.data.mirror == "../shared/data"


def test_a_slice_of_a_profile_runs_its_targets_and_the_report_and_is_logged_so(tmp_path, monkeypatch):
    import subprocess

    from aebench import profiles

    calls = []
    monkeypatch.setattr(profiles.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0))
    profiles.run_dvc(tmp_path, ["train-loop-*", "evaluate-loop-*"])
    assert calls[-2][-4:] == ["repro", "--glob", "train-loop-*", "evaluate-loop-*"]
    assert calls[-1][-3:] == ["repro", "--single-item", "report"]  # not the runs the report depends on
    profiles.run_dvc(tmp_path)
    assert calls[-1][-1] == "repro"
    monkeypatch.setattr(profiles, "_git", lambda *a: "c" * 40)
    runs = profiles._record_run(tmp_path, 12.0, ["train-loop-*"])
    assert runs[-1]["stages"] == ["train-loop-*"] and "CPU cores" in runs[-1]["machine"]


def test_a_profile_run_that_stops_early_is_logged_with_its_exit_code(tmp_path, monkeypatch):
    """Its finished stages stay in the worktree and count in the results: its time is logged."""
    import subprocess

    from aebench import profiles
    from aebench.errors import UserError

    monkeypatch.setattr(profiles, "_git", lambda *a: "c" * 40)
    monkeypatch.setattr(profiles.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 130 if "repro" in cmd else 0))
    with pytest.raises(UserError, match="exit 130"):
        profiles.run_dvc(tmp_path, ["train-loop-*"])
    runs = json.loads((tmp_path / profiles.RUN_LOG).read_text())
    assert runs[-1]["exit_code"] == 130 and runs[-1]["stages"] == ["train-loop-*"]
