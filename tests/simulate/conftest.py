"""Shared simulator runs: one mid-size run (2,000 customers x 30 days) reused by several tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tailguard.simulate import SimulationResult, simulate

MID_CUSTOMERS = 2000
MID_DAYS = 30
MID_SEED = 1


@pytest.fixture(scope="session")
def mid_run(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    out = tmp_path_factory.mktemp("mid")
    return simulate(customers=MID_CUSTOMERS, days=MID_DAYS, seed=MID_SEED, out=out, fmt="parquet")


@pytest.fixture(scope="session")
def mid_truth(mid_run: SimulationResult) -> dict[str, Any]:
    return json.loads(Path(mid_run.truth_path).read_text())
