"""The write-ahead log: group commit, replay after a crash, idempotent replays, bad events."""

from __future__ import annotations

import json
import shutil
import threading
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
        "input_tokens": 10 + i,
        "output_tokens": 2,
        **kw,
    }


def _ids(led: Ledger) -> list[str]:
    con = led.connect()
    try:
        return sorted(r[0] for r in con.execute("SELECT event_id FROM events").fetchall())
    finally:
        con.close()


def test_concurrent_submits_are_group_committed(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "led")
    wal = WriteAheadLog(tmp_path / "wal", led.append, flush_interval_s=3600)
    futs = []
    lock = threading.Lock()

    def worker(w: int) -> None:
        for i in range(25):
            f = wal.submit([_ev(w * 100 + i)])
            with lock:
                futs.append(f)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in futs:
        f.result(timeout=10)  # acknowledged = written and fdatasync'ed
    assert wal.stats["events"] == 200
    assert wal.stats["syncs"] == wal.stats["batches"] <= 200
    wal.close()  # folds the log into the ledger
    assert len(_ids(led)) == 200
    assert not list((tmp_path / "wal").glob("wal-*.jsonl"))


def test_replay_after_crash_skips_torn_line_and_is_idempotent(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "led")
    wal_dir = tmp_path / "wal"
    wal_dir.mkdir()
    import msgspec

    lines = b"".join(msgspec.json.encode(_ev(i)) + b"\n" for i in range(3))
    torn = msgspec.json.encode(_ev(99))[:20]  # the crash cut this write: never acknowledged
    (wal_dir / "wal-1-1-1.jsonl").write_bytes(lines + torn)
    keep = tmp_path / "copy.jsonl"
    shutil.copy(wal_dir / "wal-1-1-1.jsonl", keep)

    wal = WriteAheadLog(wal_dir, led.append, flush_interval_s=3600)
    assert wal.replay() == 3
    # the same log again (a crash between the segment commit and the log's deletion)
    shutil.copy(keep, wal_dir / "wal-1-1-2.jsonl")
    assert wal.replay() == 3
    wal.close()
    assert _ids(led) == ["e0", "e1", "e2"]


def test_a_bad_event_is_set_aside_not_blocking_the_others(tmp_path: Path) -> None:
    led = Ledger(tmp_path / "led")
    wal = WriteAheadLog(tmp_path / "wal", led.append, flush_interval_s=3600)
    wal.submit([_ev(1), _ev(2, input_tokens=-5), _ev(3)]).result(timeout=10)
    wal.close()
    assert _ids(led) == ["e1", "e3"]
    [rej] = [json.loads(x) for x in (tmp_path / "wal" / "rejected.jsonl").read_text().splitlines()]
    assert json.loads(rej["raw"])["event_id"] == "e2"
    assert rej["field"] == "input_tokens" and rej["line"] == 2
    assert wal.stats["rejected"] == 1
