"""A SIGKILLed gateway loses no acknowledged call: the write-ahead log is replayed at start.

Real processes: ``tailguard mock-upstream`` and ``tailguard gateway`` as subprocesses on
loopback ports; the flush into Parquet is set to an hour so every event is still only in the
log when the gateway is killed.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from tailguard.gateway.config import create_key
from tests.gateway.conftest import free_port, write_config
from tests.gateway.helpers import ROOT, start_cli, wait_healthy


@pytest.mark.slow
def test_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    env = dict(os.environ, MOCK_PROVIDER_KEY="sk-mock", PYTHONPATH=str(ROOT), LOG_DIR=str(tmp_path))
    mport, gport = free_port(), free_port()
    mock = start_cli(["mock-upstream", "--port", str(mport), "--latency-ms", "5"], env)
    cfg = write_config(tmp_path, upstream=f"http://127.0.0.1:{mport}/v1", flush_interval_s=3600)
    key = create_key(tmp_path / "keys.json", "acme")
    gw = start_cli(["gateway", "--config", str(cfg), "--port", str(gport)], env)
    url = f"http://127.0.0.1:{gport}"
    acked: dict[str, int] = {}  # task id -> prompt tokens the client saw
    lock = threading.Lock()
    try:
        wait_healthy(f"http://127.0.0.1:{mport}", mock)
        wait_healthy(url, gw)

        def client(worker: int) -> None:
            with httpx.Client(base_url=url, timeout=5) as c:
                for i in range(1000):
                    task = f"t{worker}-{i}"
                    try:
                        r = c.post(
                            "/v1/chat/completions",
                            headers={"Authorization": f"Bearer {key}", "X-Tailguard-Task": task},
                            json={
                                "model": "gpt-4o-mini",
                                "messages": [{"role": "user", "content": "x " * (i % 7 + 1)}],
                                "max_tokens": 3,
                            },
                        )
                    except httpx.HTTPError:
                        return  # the gateway died under this request: not acknowledged
                    if r.status_code != 200:
                        return
                    with lock:
                        acked[task] = r.json()["usage"]["prompt_tokens"]

        threads = [threading.Thread(target=client, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        while len(acked) < 60:
            time.sleep(0.01)
        gw.send_signal(signal.SIGKILL)  # mid-traffic: some requests are in flight
        gw.wait(10)
        for t in threads:
            t.join(10)
        assert not list((tmp_path / "ledger" / "segments").glob("*.parquet"))
        assert list((tmp_path / "ledger" / "wal").glob("wal-*.jsonl"))

        gw = start_cli(["gateway", "--config", str(cfg), "--port", str(gport)], env)
        wait_healthy(url, gw)  # the log is replayed before the first request is served
    finally:
        for p in (gw, mock):
            p.send_signal(signal.SIGTERM)
            p.wait(10)
    from tests.gateway.conftest import Env

    probe = type("P", (), {})()
    probe.gw = type("G", (), {"cfg": type("C", (), {"ledger": tmp_path / "ledger"})})()
    rows = Env.events(probe)  # type: ignore[arg-type]
    seen = {r["task_id"]: r["input_tokens"] for r in rows}
    assert len(rows) == len(seen)  # replayed twice (start + shutdown) yet counted once
    missing = set(acked) - set(seen)
    assert not missing, f"{len(missing)} acknowledged calls lost"
    assert all(seen[t] == n for t, n in acked.items())
