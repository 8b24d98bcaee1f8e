"""`dvc plots show` on the report's curve tables, with the `plots:` section the project declares."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from report_fake_tree import build_tree

from aebench.report import build_report
from aebench.report.dvc_plots import DVC_PLOTS_YAML, TEMPLATES

REPO = Path(__file__).resolve().parents[1]
DVC = Path(sys.executable).with_name("dvc")

METRICS = {
    "digits": {"ae": {"recon_mse": 0.02}, "vae": {"recon_mse": 0.03}},
    "lines": {"ae": {"recon_mse": 0.01}, "vae": {"recon_mse": 0.01}},
}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = build_tree(tmp_path_factory.mktemp("dvcplots"), METRICS, roc=(("digits", "vae"),))
    build_report(root)
    return root


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_curve_tables(project):
    curves = _rows(project / "reports" / "plots" / "training_curves.csv")
    assert len(curves) == 4 * 3  # 2 datasets x 2 models x 3 epochs
    assert {(r["dataset"], r["model"]) for r in curves} == {(d, m) for d in METRICS for m in ("ae", "vae")}
    assert curves[0] == {"dataset": "digits", "model": "ae", "epoch": "1", "train_loss": "1", "val_loss": "1.2"}
    roc = _rows(project / "reports" / "plots" / "roc.csv")
    assert {(r["dataset"], r["model"]) for r in roc} == {("digits", "vae")}
    by_score = {}
    for r in roc:
        by_score.setdefault(r["score"], []).append(int(r["step"]))
    assert by_score == {"-log N(z)": [0, 1, 2, 3], "negative ELBO": [0, 1, 2]}


@pytest.mark.skipif(not DVC.exists(), reason="dvc is not installed in this environment")
def test_dvc_plots_show_renders_both_plots(project):
    shutil.copytree(TEMPLATES, project / "src" / "aebench" / "report" / "vega")
    (project / "dvc.yaml").write_text(DVC_PLOTS_YAML)
    subprocess.run([str(DVC), "init", "--no-scm", "-q"], cwd=project, check=True)
    proc = subprocess.run([str(DVC), "plots", "show", "--json"], cwd=project, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert not shown.get("errors"), shown["errors"]
    specs = {name: plots[0]["content"] for name, plots in shown["data"].items()}
    assert set(specs) == {"reports/plots/training_curves.csv", "reports/plots/roc.csv"}
    train = specs["reports/plots/training_curves.csv"]
    assert len(train["data"]["values"]) == 12 and train["facet"]["field"] == "panel"
    assert train["title"] == "Training curves (validation solid, train dashed)"
    assert len(specs["reports/plots/roc.csv"]["data"]["values"]) == 7
    assert all(row["rev"] == "workspace" for spec in specs.values() for row in spec["data"]["values"])

    jsonschema = pytest.importorskip("jsonschema")
    altair = pytest.importorskip("altair")
    schemas = sorted(Path(altair.__file__).parent.glob("vegalite/v*/schema/vega-lite-schema.json"))
    if not schemas:
        pytest.skip("no Vega-Lite JSON schema found to validate the specs against")
    schema = json.loads(schemas[-1].read_text())
    for spec in specs.values():
        jsonschema.validate({k: v for k, v in spec.items() if k != "$schema"}, schema)


def test_repo_dvc_yaml_declares_these_plots():
    """Once dvc.yaml has a `plots:` section, it must be the one the report writes for."""
    declared = yaml.safe_load((REPO / "dvc.yaml").read_text()).get("plots")
    if declared is None:
        pytest.skip("dvc.yaml has no `plots:` section yet")
    assert declared == yaml.safe_load(DVC_PLOTS_YAML)["plots"]
