"""A small hand-checked ledger built through the real CLI (ingest, customers import)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tailguard.cli import run
from tests.ledger.fixtures import write_fixture


@pytest.fixture
def small_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """Three customers (A pro, B free, C team) over 2025-06-01..05: tests/ledger/fixtures.py."""
    ev, prices, cust = write_fixture(tmp_path)
    led = tmp_path / "L"
    assert run(["ingest", str(ev), "--prices", str(prices), "--ledger", str(led)]) == 0
    assert run(["customers", "import", str(cust), "--ledger", str(led)]) == 0
    capsys.readouterr()
    return led
