"""SDK fixtures: the project's mock provider on a real loopback socket, a fresh ledger.

The official SDKs talk to the mock through their own default HTTP stack (``httpx2`` transports
over TCP), so the tap under test wraps exactly what it wraps in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tailguard.gateway.mock import MockUpstream, create_mock
from tailguard.sdk import Tailguard, connect
from tests.gateway.conftest import ServerThread


class Mock:
    def __init__(self, app: MockUpstream, srv: ServerThread) -> None:
        self.app = app
        self.srv = srv
        self.url = srv.url


@pytest.fixture(scope="module")
def mock() -> Iterator[Mock]:
    app = create_mock()
    app.hang_s = 2.0
    srv = ServerThread(app).__enter__()
    yield Mock(app, srv)
    srv.__exit__()


@pytest.fixture
def tg(tmp_path: Path) -> Iterator[Tailguard]:
    h = connect(ledger=tmp_path / "ledger", default_customer=None)
    yield h
    h.close()


def ledger_rows(path: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """Rows of the ledger at ``path`` (in timestamp order), as dicts."""
    from tailguard.ledger.store import Ledger

    led = Ledger(path)
    if not led.segment_files():
        return []
    con = led.connect()
    sql = "SELECT * FROM events" + (" WHERE kind = ?" if kind else "") + " ORDER BY ts, event_id"
    cur = con.execute(sql, [kind] if kind else [])
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


class ListSink:
    """A sink that keeps the built events in memory (to read the fields the ledger drops)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def send(self, events: list[dict[str, Any]]) -> None:
        self.events.extend(events)

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, int]:
        return {}
