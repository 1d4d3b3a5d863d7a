"""The dashboard's fixtures: the asymmetric ledger (built once) and an app over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tailguard.ledger import Ledger
from tests.fixtures_asymmetric import asymmetric_ledger


@pytest.fixture(scope="session")
def asym(tmp_path_factory: pytest.TempPathFactory) -> Ledger:
    """The ledger of tests/fixtures_asymmetric.py, ingested and priced for real."""
    return asymmetric_ledger(tmp_path_factory.mktemp("asym"))


@pytest.fixture(scope="session")
def client(asym: Ledger) -> Iterator[object]:
    """An in-process client of the dashboard over ``asym`` (Starlette's TestClient)."""
    from starlette.testclient import TestClient

    from tailguard.ui import create_app

    with TestClient(create_app(asym)) as c:
        yield c


@pytest.fixture
def ledger_dir(asym: Ledger) -> Path:
    return asym.path
