"""Shared fixtures: every test gets its own MLflow store and never touches the repo's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Stages run in-process in tests (so capsys sees their output); tests/test_warm.py and the
# end-to-end test opt in to the warm stage server where they test it.
os.environ["AEBENCH_WARM"] = "0"
SHARED_DATA = Path(os.environ.get("AEBENCH_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_tracking(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("AEBENCH_ROOT", str(tmp_path))
    yield
