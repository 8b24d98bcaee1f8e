"""The README's headline table is rendered from results/paper/claims.json, and a check fails
when the two differ."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aebench.errors import UserError
from aebench.report.headline import END, START, render_table, update

REPO = Path(__file__).resolve().parents[1]

ROW = {"claim": "c", "paper": "GWAE (Nakagawa et al., ICLR 2023)", "statement": "A | B detects OoD.", "dataset": "mnist",
       "status": "held", "checks": [
           {"op": ">=", "plus": 0.0, "tolerance": 0.005,
            "left": {"model": "gwae_gmp", "metric": "ood_auroc", "seeds": [0, 1, 2], "values": [0.9999, 0.9998, 0.9999],
                     "n": 3, "mean": 0.99987, "sd": 5.8e-05},
            "right": {"model": "vae", "metric": "ood_auroc", "seeds": [0, 1, 2], "values": [1.0, 1.0, 0.9999],
                      "n": 3, "mean": 0.99997, "sd": 5.8e-05},
            "difference": {"mean": -1e-4, "low": -3e-4, "high": 5e-5, "level": 0.95, "method": "paired t", "n": 3}},
           {"op": "<", "plus": 0.05, "left": {"model": "vae", "metric": "knn_acc", "seeds": [0], "values": [0.2], "n": 1,
                                               "mean": 0.2, "sd": None},
            "right": {"text": "1/n_classes = 1/10", "value": 0.1},
            "difference": {"mean": 0.05, "low": None, "high": None, "level": 0.95, "method": "none: 1 seed", "n": 1}}]}


def test_the_table_shows_every_side_with_its_spread_and_the_interval():
    table = render_table([ROW, {**ROW, "dataset": None}])
    lines = table.splitlines()
    assert len(lines) == 3  # header, rule, and the row that ran
    assert lines[2].startswith("| GWAE | A \\| B detects OoD. | mnist | ood_auroc: gwae_gmp 0.99987 ± 5.8e-05 (n=3) >= ")
    assert "difference -0.0001 [-0.0003, 5e-05], tolerance 0.005" in lines[2]
    assert "knn_acc: vae 0.200 (n=1) < 1/n_classes = 1/10 + 0.05" in lines[2] and lines[2].endswith("| held |")


def test_update_writes_between_the_markers_and_check_finds_a_stale_table(tmp_path):
    (tmp_path / "results" / "paper").mkdir(parents=True)
    (tmp_path / "results" / "paper" / "claims.json").write_text(json.dumps([ROW]))
    (tmp_path / "README.md").write_text(f"# x\n\n{START}\nold\n{END}\n\nafter\n")
    with pytest.raises(UserError, match="differs from results/paper/claims.json: run `aebench readme`"):
        update(tmp_path, check=True)
    update(tmp_path)
    text = (tmp_path / "README.md").read_text()
    assert "**1 held.** Each side rests on 1 to 3 seeds" in text and text.endswith(f"{END}\n\nafter\n") and "old" not in text
    assert "matches" in update(tmp_path, check=True)
    (tmp_path / "results" / "paper" / "claims.json").write_text(json.dumps([{**ROW, "checks": [{"value": 1}]}]))
    with pytest.raises(UserError, match="re-render it with `aebench profile paper --report-only`"):
        update(tmp_path)


def test_the_committed_readme_matches_the_committed_paper_results():
    update(REPO, check=True)
