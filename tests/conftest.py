"""Shared fixtures: every test runs in its own directory with no TAILGUARD_* from outside."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in list(os.environ):
        if k.startswith("TAILGUARD_"):
            monkeypatch.delenv(k)
    monkeypatch.chdir(tmp_path)


REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"
