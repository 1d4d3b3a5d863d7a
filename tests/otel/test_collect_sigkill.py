"""SIGKILL of ``tailguard collect`` under load: nothing it answered 200 for is lost, spans held
for their parent survive the kill, and a replayed export is not counted twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import free_port
from tests.otel.otlp_builders import request, span
from tests.sdk.conftest import ledger_rows

ROOT_DIR = Path(__file__).resolve().parents[2]
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o-mini",
    "gen_ai.usage.output_tokens": 2,
}


def _start(led: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT_DIR))
    with log.open("ab") as fh:
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tailguard",
                "collect",
                "--ledger",
                str(led),
                "--port",
                str(port),
            ],
            cwd=ROOT_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert p.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return p
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("collect did not come up")


def _trace(i: int) -> str:
    return f"{i + 1:032x}"


def _complete(i: int) -> bytes:
    """Trace i: a root with the customer, one chat span with i + 1 input tokens."""
    t = _trace(i)
    return json.dumps(
        request(
            [
                span(
                    t,
                    "0000000000000002",
                    "0000000000000001",
                    "chat",
                    dict(CHAT, **{"gen_ai.usage.input_tokens": i + 1}),
                ),
                span(t, "0000000000000001", None, "root", {"tailguard.customer_id": f"c{i % 7}"}),
            ]
        )
    ).encode()


def _child_only(i: int) -> bytes:
    t = f"{i + 1:08x}" + "f" * 24
    s = span(
        t,
        "0000000000000002",
        "0000000000000001",
        "chat",
        dict(CHAT, **{"gen_ai.usage.input_tokens": 1}),
    )
    return json.dumps(request([s])).encode()


def _parent_only(i: int) -> bytes:
    t = f"{i + 1:08x}" + "f" * 24
    s = span(t, "0000000000000001", None, "root", {"tailguard.customer_id": "held-cust"})
    return json.dumps(request([s])).encode()


H = {"content-type": "application/json"}


@pytest.mark.slow
def test_sigkill_under_load(tmp_path: Path) -> None:
    led, port, log = tmp_path / "L", free_port(), tmp_path / "collect.log"
    url = f"http://127.0.0.1:{port}/v1/traces"
    proc = _start(led, port, log)
    acked: set[int] = set()
    lock = threading.Lock()
    try:
        with httpx.Client(timeout=10) as c:
            for i in range(30):  # children whose parents come only after the kill: held
                assert c.post(url, content=_child_only(i), headers=H).status_code == 200
        stop = threading.Event()

        def load(worker: int) -> None:
            with httpx.Client(timeout=10) as c:
                i = worker
                while not stop.is_set():
                    try:
                        r = c.post(url, content=_complete(i), headers=H)
                    except httpx.HTTPError:
                        return  # killed: no answer, not acknowledged
                    if r.status_code == 200:
                        with lock:
                            acked.add(i)
                    i += 4

        threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        time.sleep(2.0)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert len(acked) > 20, "the load did not run"

    proc = _start(led, port, log)  # replays the log and the spool
    try:
        with httpx.Client(timeout=10) as c:
            for i in range(30):
                assert c.post(url, content=_parent_only(i), headers=H).status_code == 200
            for i in sorted(acked)[:25]:  # an exporter retrying: the same spans again
                assert c.post(url, content=_complete(i), headers=H).status_code == 200
    finally:
        proc.send_signal(signal.SIGTERM)  # graceful: the log is folded into the ledger
        proc.wait(30)
    rows = ledger_rows(led, "llm_call")
    ids = [r["event_id"] for r in rows]
    assert len(ids) == len(set(ids))
    by_trace = {r["event_id"].split("-")[1]: r for r in rows}
    for i in acked:
        r = by_trace[_trace(i)]
        assert (r["customer_id"], r["input_tokens"]) == (f"c{i % 7}", i + 1)
    held = [r for r in rows if r["event_id"].split("-")[1].endswith("f" * 24)]
    assert len(held) == 30 and {r["customer_id"] for r in held} == {"held-cust"}
