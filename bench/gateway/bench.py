"""Gateway benchmark: added latency (p50, p99) over calling the mock directly, and max req/s.

::

    .venv/bin/python bench/gateway/bench.py [--requests 3000] [--litellm /path/to/litellm]

Runs, in one go on this machine: ``tailguard mock-upstream`` (uvicorn), ``tailguard gateway``
in front of it with the guard (in-process store, generous limits so every call is checked,
reserved and settled) and the ledger (write-ahead log with fsync group commit, flushed to
Parquet every 2 s) on, and optionally LiteLLM's proxy in front of the same mock. The load
generator is a minimal keep-alive HTTP/1.1 client on asyncio (one connection per concurrent
client) so that it costs as little CPU as possible: on 2 cores the generator, the gateway and
the mock share the machine, as they would for LiteLLM.

Added latency = the percentile through the proxy minus the same percentile calling the mock
directly, same client, same request (a non-streamed chat completion, 16 output tokens; with
``--stream`` a streamed one: 16 content chunks, timed to the last byte).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BODY = json.dumps(
    {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "what is the capital of france, in one word"}],
        "max_tokens": 16,
    }
).encode()

LITELLM_KEY = "sk-bench-litellm-master-key-0123456789abcdef"
STREAM_BODY = json.dumps(dict(json.loads(BODY), stream=True)).encode()
POLICY = """
[guard]
default_tier = "free"
[tiers.free]
period = "month"
hard_limit_usd = 1000000
overage = "hard_cap"
rpm = 100000000
tpm = 100000000000
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request_bytes(
    port: int, key: str, path: str = "/v1/chat/completions", *, stream: bool = False
) -> bytes:
    body = STREAM_BODY if stream else BODY
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(r: asyncio.StreamReader) -> int:
    head = await r.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    lower = head.lower()
    if b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await r.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await r.readuntil(b"\r\n")
                break
            await r.readexactly(size + 2)
    else:
        i = lower.index(b"content-length:")
        n = int(lower[i + 15 : lower.index(b"\r\n", i)])
        await r.readexactly(n)
    return status


async def load(port: int, req: bytes, concurrency: int, total: int) -> dict[str, float]:
    lat: list[float] = []
    errors = 0
    per = total // concurrency

    async def client() -> None:
        nonlocal errors
        r, w = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in range(per):
                t = time.perf_counter()
                w.write(req)
                status = await read_response(r)
                lat.append(time.perf_counter() - t)
                if status != 200:
                    errors += 1
        finally:
            w.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    lat.sort()
    q = statistics.quantiles(lat, n=100, method="inclusive")
    return {
        "n": len(lat),
        "errors": errors,
        "p50_ms": q[49] * 1000,
        "p99_ms": q[98] * 1000,
        "rps": len(lat) / wall,
    }


def wait_up(port: int, path: str = "/healthz", timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"port {port} did not come up")


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as fh:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--durability", default="fsync")
    ap.add_argument("--litellm", help="path to a litellm executable (its own venv)")
    ap.add_argument("--stream", action="store_true", help="streamed completions (16 chunks)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "gateway" / "results.json"))
    a = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="tg-bench-"))
    env = dict(os.environ, MOCK_PROVIDER_KEY="sk-mock", PYTHONPATH=str(ROOT))
    py = [sys.executable, "-m", "tailguard"]
    mport, gport = free_port(), free_port()
    (tmp / "policy.toml").write_text(POLICY)
    (tmp / "gateway.toml").write_text(
        f"""[gateway]
ledger = "{tmp / "ledger"}"
policy = "policy.toml"
durability = "{a.durability}"
[[upstream]]
provider = "openai"
base_url = "http://127.0.0.1:{mport}/v1"
api_key_env = "MOCK_PROVIDER_KEY"
models = ["*"]
"""
    )
    from tailguard.gateway.config import create_key

    key = create_key(tmp / "keys.json", "acme")
    procs = [
        start([*py, "mock-upstream", "--port", str(mport)], env, tmp / "mock.log"),
        start(
            [*py, "gateway", "--config", str(tmp / "gateway.toml"), "--port", str(gport)],
            env,
            tmp / "gw.log",
        ),
    ]
    targets: dict[str, int] = {"direct": mport, "tailguard": gport}
    if a.litellm:
        lport = free_port()
        (tmp / "litellm.yaml").write_text(
            f"""model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://127.0.0.1:{mport}/v1
      api_key: sk-mock
"""
        )
        lenv = dict(os.environ, LITELLM_LOG="ERROR", LITELLM_MASTER_KEY=LITELLM_KEY)
        procs.append(
            start(
                [a.litellm, "--config", str(tmp / "litellm.yaml"), "--port", str(lport)],
                lenv,
                tmp / "litellm.log",
            )
        )
        targets["litellm"] = lport
    results: dict[str, Any] = {
        "requests": a.requests,
        "durability": a.durability,
        "stream": a.stream,
    }
    try:
        wait_up(mport)
        wait_up(gport)
        if "litellm" in targets:
            wait_up(targets["litellm"], "/health/liveliness", timeout=180)
        for name, port in targets.items():
            k = {"tailguard": key, "litellm": LITELLM_KEY}.get(name, "sk-mock")
            req = request_bytes(port, k, stream=a.stream)
            asyncio.run(load(port, req, 8, 400))  # warm up: pools, caches, JIT-free but lazy
            for c in (1, 32):
                n = a.requests if c == 1 else a.requests * 2
                results[f"{name}_c{c}"] = asyncio.run(load(port, req, c, n))
                print(name, c, results[f"{name}_c{c}"], flush=True)
        import httpx

        m = httpx.get(f"http://127.0.0.1:{gport}/metrics").text
        wal = {
            ln.split()[0]: float(ln.split()[1])
            for ln in m.splitlines()
            if ln.startswith("tailguard_gateway_wal_")
        }
        results["wal_events_per_batch"] = wal["tailguard_gateway_wal_events_total"] / max(
            1.0, wal["tailguard_gateway_wal_batches_total"]
        )
        print("wal", wal, flush=True)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
    if (tmp / "ledger").exists():
        from tailguard.ledger.store import Ledger

        con = Ledger(tmp / "ledger").connect()
        results["ledger_llm_calls"] = con.execute(
            "SELECT count(*) FROM events WHERE kind = 'llm_call'"
        ).fetchone()[0]
        con.close()
    for name in targets:
        if name == "direct":
            continue
        for c in (1, 32):
            r, d = results[f"{name}_c{c}"], results[f"direct_c{c}"]
            r["added_p50_ms"] = r["p50_ms"] - d["p50_ms"]
            r["added_p99_ms"] = r["p99_ms"] - d["p99_ms"]
    Path(a.out).write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
