"""``tailguard collect`` throughput: OTLP protobuf spans per second, ledger on.

    .venv/bin/python bench/bench_collect.py             # --requests 200 --clients 2

A real ``tailguard collect`` process (uvicorn, ``fsync`` write-ahead log, folded into Parquet
every 2 s) receives ``ExportTraceServiceRequest``s of 512 spans, as the SDK's
``BatchSpanProcessor`` sends them: traces of a root span carrying the customer and three chat
spans with OpenTelemetry GenAI usage (plus the attributes a real instrumentation adds, which
the receiver skips). Printed: spans/s acknowledged (wall), the CPU seconds of the collect
process and its fold process (user + system from /proc) and spans per CPU-second, the load
average (the machine is shared), and that the ledger holds exactly one event per chat span.
"""

from __future__ import annotations

import argparse
import base64
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx

T0 = 1_767_225_600_000_000_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kv(k: str, v: object) -> dict[str, object]:
    if isinstance(v, int):
        return {"key": k, "value": {"intValue": str(v)}}
    return {"key": k, "value": {"stringValue": str(v)}}


def build(k: int, per: int = 512) -> tuple[bytes, int]:
    """One request of ``per`` spans; returns (protobuf body, chat spans in it)."""
    from google.protobuf.json_format import ParseDict
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    def b64(h: str) -> str:
        return base64.b64encode(bytes.fromhex(h)).decode()

    spans: list[dict[str, object]] = []
    chats = 0
    i = 0
    while len(spans) < per:
        t = f"{k:016x}{i:016x}"
        i += 1
        root = f"{1:016x}"
        spans.append(
            {
                "traceId": b64(t),
                "spanId": b64(root),
                "name": "POST /support",
                "kind": 2,
                "startTimeUnixNano": str(T0),
                "endTimeUnixNano": str(T0 + 900_000_000),
                "attributes": [
                    _kv("tailguard.customer_id", f"c{i % 500}"),
                    _kv("enduser.id", f"u{i}"),
                    _kv("http.route", "/support"),
                    _kv("http.response.status_code", 200),
                ],
            }
        )
        for j in range(3):
            chats += 1
            spans.append(
                {
                    "traceId": b64(t),
                    "spanId": b64(f"{j + 2:016x}"),
                    "parentSpanId": b64(root),
                    "name": "chat gpt-4o-mini",
                    "kind": 3,
                    "startTimeUnixNano": str(T0 + j * 100_000_000),
                    "endTimeUnixNano": str(T0 + j * 100_000_000 + 80_000_000),
                    "attributes": [
                        _kv("gen_ai.operation.name", "chat"),
                        _kv("gen_ai.provider.name", "openai"),
                        _kv("gen_ai.request.model", "gpt-4o-mini"),
                        _kv("gen_ai.response.model", "gpt-4o-mini-2024-07-18"),
                        _kv("gen_ai.response.id", f"chatcmpl-{k}-{i}-{j}"),
                        _kv("gen_ai.response.finish_reasons", "stop"),
                        _kv("gen_ai.usage.input_tokens", 900 + j),
                        _kv("gen_ai.usage.cache_read.input_tokens", 512),
                        _kv("gen_ai.usage.output_tokens", 120),
                        _kv("server.address", "api.openai.com"),
                        _kv("server.port", 443),
                    ],
                }
            )
    req = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_kv("service.name", "app")]},
                "scopeSpans": [{"scope": {"name": "bench"}, "spans": spans}],
            }
        ]
    }
    return ParseDict(req, ExportTraceServiceRequest()).SerializeToString(), chats


def _cpu(pid: int) -> tuple[float, float]:
    """User + system CPU seconds of ``pid`` and of its live children (the fold process)."""
    own = children = 0.0
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        secs = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if int(p.name) == pid:
            own += secs
        elif int(fields[1]) == pid:
            children += secs
    return own, children


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--clients", type=int, default=2)
    args = ap.parse_args()
    bodies = [build(k) for k in range(args.requests)]
    spans = 512 * len(bodies)
    chats = sum(c for _, c in bodies)
    tmp = Path(tempfile.mkdtemp(prefix="bench-collect-"))
    port = _free_port()
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tailguard",
            "collect",
            "--ledger",
            str(tmp / "L"),
            "--port",
            str(port),
        ],
        cwd=root,
        env=dict(os.environ, PYTHONPATH=str(root)),
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    h = {"content-type": "application/x-protobuf"}
    with httpx.Client() as c:  # warm-up (the price book loads on the first fold)
        c.post(url + "/v1/traces", content=build(10**6, 64)[0], headers=h)
    time.sleep(3)
    cpu0 = _cpu(proc.pid)
    nxt = iter(range(len(bodies)))
    lock = threading.Lock()
    fails = [0]

    def client() -> None:
        with httpx.Client(timeout=60) as c:
            while True:
                with lock:
                    i = next(nxt, None)
                if i is None:
                    return
                r = c.post(url + "/v1/traces", content=bodies[i][0], headers=h)
                if r.status_code != 200 or r.content:
                    fails[0] += 1

    t = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - t
    own1, kids1 = _cpu(proc.pid)
    own, kids = own1 - cpu0[0], kids1 - cpu0[1]
    cpu = own + kids
    load = os.getloadavg()[0]
    t = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    proc.wait(120)
    fold = time.perf_counter() - t
    from tailguard.ledger.store import Ledger

    n = (
        Ledger(tmp / "L")
        .connect()
        .execute("SELECT count(*), count(DISTINCT event_id) FROM events WHERE kind = 'llm_call'")
        .fetchone()
    )
    assert n is not None
    print(
        f"{spans:,} spans ({chats:,} chat spans) in {len(bodies)} requests, {args.clients} "
        f"clients: {spans / wall:,.0f} spans/s acknowledged (wall {wall:.2f} s); collect CPU "
        f"{cpu:.2f} s = {spans / cpu:,.0f} spans per CPU-second (receiving {own:.2f} s = "
        f"{spans / own:,.0f} spans per CPU-second, folding {kids:.2f} s); "
        f"load average {load:.1f}; "
        f"shutdown fold {fold:.1f} s; ledger llm_call rows {n[0]:,} (distinct {n[1]:,}, "
        f"expected {chats + 48:,} with the warm-up); failed requests {fails[0]}"
    )


if __name__ == "__main__":
    main()
