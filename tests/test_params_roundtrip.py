"""params.yaml survives `dvc exp run -S`: every section lists every field of its config class
(so `-S key=value` can set any of them without `+`), and DVC's rewrite of the file changes only
the lines it sets (the file is in the layout DVC's round-trip dumper writes back)."""

import difflib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from aebench.cli import main
from aebench.config import Params, incomplete_sections
from aebench.models import config_class

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"
DVC = shutil.which("dvc") or str(Path(sys.executable).with_name("dvc"))


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_every_model_section_lists_every_field_of_its_config_class():
    raw = yaml.safe_load(PARAMS.read_text())
    for name in raw["models"]:
        section = raw["model"][name]
        fields = set(config_class(section.get("type", name)).model_fields)
        assert set(section) - {"type", "train"} == fields, f"model.{name}"
    # the nested configs (pixelcnn) and the train, evaluate, data and diffmap sections too
    assert incomplete_sections(Params.model_validate(raw), config_class) == []


def test_check_warns_about_a_field_a_section_leaves_out(tmp_path, capsys):
    line = f"    mmd_weight: {config_class('wae').model_fields['mmd_weight'].default}\n"
    text = PARAMS.read_text()
    assert text.count(line) == 1
    path = tmp_path / "params.yaml"
    path.write_text(text.replace(line, ""))
    main(["check", str(path)])  # a warning, not an error: partial files (profiles) still run
    out, err = capsys.readouterr()
    assert f"{path}: valid" in out
    assert (f"{path}: warning: model.wae leaves out 1 field: add `{line.strip()}` to model.wae so "
            "`dvc exp run -S` can set it") in err
    main(["check", str(PARAMS)])
    assert "warning" not in capsys.readouterr().err


def test_dvcs_rewrite_changes_only_the_lines_it_sets(tmp_path):
    """One override per section through the function `dvc exp run -S` calls: nothing else of the
    file (lists, nulls, comments, flow mappings) is rewritten."""
    hydra = pytest.importorskip("dvc.utils.hydra")
    raw = yaml.safe_load(PARAMS.read_text())
    overrides = [f"{section}.seed=7" for section in ("data", "evaluate", "diffmap")]
    overrides += [f"model.{name}.latent_dim=7" for name in raw["models"]]
    path = tmp_path / "params.yaml"
    shutil.copy(PARAMS, path)
    hydra.apply_overrides(path, overrides)
    changed = changed_lines(PARAMS.read_text(), path.read_text())
    assert len(changed) == 2 * len(overrides), "\n".join(changed)
    assert all(re.match(r"[-+] +(seed|latent_dim):", line) for line in changed), "\n".join(changed)
    assert sum(re.match(r"\+ +(seed|latent_dim): 7\b", line) is not None for line in changed) == len(overrides)


def test_dvcs_rewrite_of_the_seeds_adds_only_their_lines(tmp_path):
    """`dvc exp run -S 'seeds=[0,1,2]'` writes the list in block style, as params.yaml has it."""
    hydra = pytest.importorskip("dvc.utils.hydra")
    path = tmp_path / "params.yaml"
    shutil.copy(PARAMS, path)
    before = yaml.safe_load(PARAMS.read_text())["seeds"]
    hydra.apply_overrides(path, ["seeds=[0,1,2]"])
    assert yaml.safe_load(path.read_text())["seeds"] == [0, 1, 2]
    changed = changed_lines(PARAMS.read_text(), path.read_text())
    assert sorted(changed) == sorted(f"+- {s}" for s in (0, 1, 2) if s not in before), changed


@pytest.mark.skipif(not Path(DVC).exists(), reason="dvc is not installed")
def test_dvc_exp_run_sets_a_default_field_changing_only_its_line(tmp_path):
    """A real `dvc exp run -S` on a field at its default, in a git + DVC repo with a copy of
    params.yaml and a stage that only echoes."""
    default = config_class("wae").model_fields["mmd_weight"].default
    assert yaml.safe_load(PARAMS.read_text())["model"]["wae"]["mmd_weight"] == default
    shutil.copy(PARAMS, tmp_path / "params.yaml")
    (tmp_path / "dvc.yaml").write_text(
        "stages:\n  echo:\n    cmd: echo ok > out.txt\n    params: [model.wae, train.epochs]\n    outs: [out.txt]\n")
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}

    def run(*cmd: str) -> None:
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stdout}\n{proc.stderr}"

    run("git", "init", "-q")
    run("git", "config", "user.name", "t")
    run("git", "config", "user.email", "t@t")
    run(DVC, "init", "-q")
    run("git", "add", "-A")
    run("git", "-c", "commit.gpgsign=false", "commit", "-qm", "params")
    run(DVC, "exp", "run", "-S", "model.wae.mmd_weight=5")
    changed = changed_lines(PARAMS.read_text(), (tmp_path / "params.yaml").read_text())
    assert changed == [f"-    mmd_weight: {default}", "+    mmd_weight: 5"]
