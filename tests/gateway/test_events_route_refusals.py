"""``POST /v1/events`` refuses what the ingest refuses (one rule for every way in, issue 16): a
timestamp outside the accepted window and an object that gives an event field twice are
answered as rejected lines, never accepted (200) and then dropped when the log is folded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tailguard.gateway.app import Gateway, create_gateway
from tailguard.gateway.config import load_config
from tests.gateway.conftest import INGEST_KEY, serve_ingest_gateway, write_config
from tests.sdk.conftest import ledger_rows


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Gateway]]:
    yield from serve_ingest_gateway(tmp_path, monkeypatch)


def _line(event_id: str, ts: str, extra: str = "") -> bytes:
    return (
        f'{{"event_id": "{event_id}", "kind": "task_outcome", "ts": "{ts}", '
        f'"customer_id": "acme", "outcome": "accepted"{extra}}}\n'
    ).encode()


def _post(url: str, body: bytes) -> httpx.Response:
    return httpx.post(
        url + "/v1/events", content=body, headers={"authorization": f"Bearer {INGEST_KEY}"}
    )


def test_time_window_and_repeated_keys(gateway: tuple[str, Gateway]) -> None:
    """Six lines: 1 and 6 are good; 2 (year 1), 3 (year 9999) and 4 (the Unix epoch, a
    broken exporter's zero) are outside the default window [2000-01-01, 2100-01-01); 5 gives
    ``customer_id`` twice (``acme`` then ``beta``: which customer pays?)."""
    url, gw = gateway
    body = b"".join(
        [
            _line("ok1", "2026-01-01T00:00:00Z"),
            _line("y1", "0001-01-01T00:00:00Z"),
            _line("y9999", "9999-12-31T00:00:00Z"),
            _line("epoch", "1970-01-01T00:00:00Z"),
            _line("dup", "2026-01-01T00:00:00Z", ', "customer_id": "beta"'),
            _line("ok2", "2099-12-31T23:59:59Z"),
        ]
    )
    r = _post(url, body)
    assert r.status_code == 200
    got = r.json()
    assert got["accepted"] == 2
    assert [x["line"] for x in got["rejected"]] == [2, 3, 4, 5]
    for x in got["rejected"][:3]:
        assert x["error"].startswith("ts: outside the accepted time window [2000-01-01, ")
    assert got["rejected"][3]["error"] == "customer_id: key given twice in one object"
    gw.wal.flush()
    assert sorted(row["event_id"] for row in ledger_rows(gw.cfg.ledger)) == ["ok1", "ok2"]


def test_the_window_setting_is_read(
    gateway: tuple[str, Gateway], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``TAILGUARD_TS_WINDOW`` widens (or narrows) the window here as in ``ingest``."""
    url, gw = gateway
    monkeypatch.setenv("TAILGUARD_TS_WINDOW", "1960-01-01..2030-01-01")
    got = _post(
        url, _line("epoch", "1970-01-01T00:00:00Z") + _line("late", "2031-01-01T00:00:00Z")
    ).json()
    assert got["accepted"] == 1 and [x["line"] for x in got["rejected"]] == [2]
    assert "[1960-01-01, 2030-01-01)" in got["rejected"][0]["error"]
    gw.wal.flush()
    assert [row["event_id"] for row in ledger_rows(gw.cfg.ledger)] == ["epoch"]


def test_a_line_nested_too_deeply_is_rejected_alone(gateway: tuple[str, Gateway]) -> None:
    """An unknown field holding 5,000 nested lists: that line is rejected (was a 500 for the
    whole body), the next one is accepted."""
    url, gw = gateway
    deep = _line("deep", "2026-01-01T00:00:00Z", ', "x": ' + "[" * 5000 + "]" * 5000)
    r = _post(url, deep + _line("ok", "2026-01-01T00:00:00Z"))
    assert r.status_code == 200
    assert r.json() == {
        "accepted": 1,
        "rejected": [{"line": 1, "error": "objects nested too deeply"}],
    }
    gw.wal.flush()
    assert [row["event_id"] for row in ledger_rows(gw.cfg.ledger)] == ["ok"]


def test_a_bad_window_setting_fails_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``TAILGUARD_TS_WINDOW`` that does not parse stops the gateway and the OTLP receiver
    from starting, with the setting named, instead of answering 500 on the first event."""
    from tailguard.errors import ConfigError
    from tailguard.otel.receiver import CollectApp

    monkeypatch.setenv("TAILGUARD_TS_WINDOW", "2030-01-01..2000-01-01")
    cfg = load_config(write_config(tmp_path))
    with pytest.raises(ConfigError, match=r"TAILGUARD_TS_WINDOW.*START must come before END"):
        create_gateway(cfg)
    with pytest.raises(ConfigError, match=r"TAILGUARD_TS_WINDOW.*is not START\.\.END"):
        monkeypatch.setenv("TAILGUARD_TS_WINDOW", "last week")
        CollectApp(tmp_path / "otel-ledger")
    assert not (tmp_path / "otel-ledger").exists()
