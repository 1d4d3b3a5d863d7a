"""One bad event in a write-ahead log flush (issue 16, F9): the valid events of the batch are
committed together, as ``tailguard ingest --rejects`` would, not one segment per event; the bad
one is kept with its file, line, field and reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tailguard.ledger.store import Ledger
from tailguard.ledger.wal import WriteAheadLog


def _ev(i: int, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{i}",
        "kind": "llm_call",
        "ts": "2026-01-05T10:00:00Z",
        "customer_id": "acme",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 10,
        "output_tokens": 2,
        **kw,
    }


def test_one_bad_event_in_300_gives_one_segment_and_one_reject(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "led")
    wal = WriteAheadLog(tmp_path / "wal", led.append, flush_interval_s=3600)
    events = [_ev(i) for i in range(300)]
    events[150] = _ev(150, attempt=99999999999)  # above the ledger's int32
    wal.submit(events).result(timeout=10)
    wal.close()
    assert len(led.segment_files()) == 1  # was 299 one-row segments
    con = led.connect()
    try:
        n, ids = con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    finally:
        con.close()
    assert (n, ids) == (299, 299)
    lines = (tmp_path / "wal" / "rejected.jsonl").read_text().splitlines()
    [rej] = [json.loads(x) for x in lines]
    assert rej["line"] == 151 and rej["field"] == "attempt"
    assert rej["file"].endswith(".jsonl") and "wal-" in rej["file"]
    assert json.loads(rej["raw"]) == json.loads(json.dumps(events[150]))
    assert wal.stats["rejected"] == 1
