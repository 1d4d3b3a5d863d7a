"""SDK benchmark: what recording one call costs the application's thread.

    .venv/bin/python bench/bench_sdk.py              # -n calls per measurement (default 20000)

The SDK's promise is "<= 20 us per recorded call at p50, on the application's thread, beside the
SDK's own call overhead". Three measurements, each interleaved call by call with its floor (the
same thing without tailguard) so machine noise moves both alike:

1. **the tap alone**: one HTTP attempt through the instrumented transport (begin, wrap the
   stream, iterate the body, close, queue) against the bare in-memory transport underneath. The
   difference is exactly the SDK's work on the caller's thread;
2. **the whole openai SDK call**: ``client.chat.completions.create`` on an instrumented client
   against the same call on a plain one (both over the in-memory transport): the SDK's own
   overhead beside ours;
3. **a stream whose usage chunk is hidden** (100 chunks, the one path that parses on the
   caller's thread), and ``task.tool(...)``.

All with the real ledger sink (write-ahead log, ``fsync``) running on its flusher thread at the
same time, so the GIL it takes is in the figures; its throughput (events built, logged, folded
per second) is printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx2
import openai

import tailguard
from tailguard.sdk.instrument import _flavour

CHAT = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "word " * 60},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 412,
            "completion_tokens": 60,
            "total_tokens": 472,
            "prompt_tokens_details": {"cached_tokens": 128},
        },
    }
).encode()
MESSAGES = [
    {"role": "system", "content": "You are a support agent. " * 20},
    {"role": "user", "content": "My invoice is wrong, can you check it? " * 5},
]


def _stream_body(n: int) -> bytes:
    parts = [
        b"data: "
        + json.dumps(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": [{"index": 0, "delta": {"content": f" w{i}"}, "finish_reason": None}],
                "usage": None,
            },
            separators=(",", ":"),  # as the provider sends it
        ).encode()
        + b"\n\n"
        for i in range(n)
    ]
    usage = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    usage |= {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": n}}
    parts.append(b"data: " + json.dumps(usage, separators=(",", ":")).encode() + b"\n\n")
    parts.append(b"data: [DONE]\n\n")
    return b"".join(parts)


class Body(httpx2.SyncByteStream):
    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks


class Canned(httpx2.BaseTransport):
    """An in-memory provider: the same answer every time, streamed in the given chunks."""

    def __init__(self, chunks: list[bytes], ctype: str) -> None:
        self.chunks = chunks
        self.headers = [(b"content-type", ctype.encode())]

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=self.headers, stream=Body(self.chunks))


def _pair(
    n: int, floor: Callable[[], Any], measured: Callable[[], Any]
) -> tuple[list[float], list[float]]:
    """Interleaved: floor, measured, floor, measured... (microseconds each)."""
    a: list[float] = []
    b: list[float] = []
    pc = time.perf_counter
    for _ in range(n):
        t = pc()
        floor()
        a.append((pc() - t) * 1e6)
        t = pc()
        measured()
        b.append((pc() - t) * 1e6)
    return a, b


def _q(xs: list[float], p: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(p) - 1] if p < 100 else max(xs)


def _row(name: str, a: list[float], b: list[float]) -> str:
    d = [y - x for x, y in zip(a, b, strict=True)]
    return (
        f"| {name} | {statistics.median(a):.1f} | {statistics.median(b):.1f} | "
        f"**{statistics.median(b) - statistics.median(a):.1f}** | {_q(d, 99):.1f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=20_000)
    args = ap.parse_args()
    n = args.n
    tmp = Path(tempfile.mkdtemp(prefix="bench-sdk-"))
    tg = tailguard.connect(ledger=tmp / "ledger", max_queue=1_000_000)
    mod, sync_t, _ = _flavour("httpx2")
    cpu0 = time.process_time()
    t_all = time.perf_counter()

    # 1. the tap alone
    inner = Canned([CHAT], "application/json")
    tap = sync_t(inner, tg.recorder, "openai", mod, sync_t._tap_cls)
    req = httpx2.Request(
        "POST",
        "https://api.openai.com/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
    )

    def through(t: Any) -> Callable[[], None]:
        def call() -> None:
            r = t.handle_request(req)
            for _ in r.stream:
                pass
            r.stream.close()

        return call

    rows = []
    with tg.task(customer="acme", user="u-1", feature="support", workload="agent") as task:
        through(tap)()  # warm-up
        a, b = _pair(n, through(inner), through(tap))
        rows.append(_row("tap alone, non-streamed chat (1 KiB answer)", a, b))

        # 2. the whole SDK call
        plain = openai.OpenAI(
            api_key="k", http_client=httpx2.Client(transport=Canned([CHAT], "application/json"))
        )
        inst = tg.instrument(
            openai.OpenAI(
                api_key="k",
                http_client=httpx2.Client(transport=Canned([CHAT], "application/json")),
            )
        )
        m = max(2_000, n // 10)
        a, b = _pair(
            m,
            lambda: plain.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
            lambda: inst.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
        )
        rows.append(_row(f"openai SDK `chat.completions.create` ({m:,} calls)", a, b))

        # 3. a stream with the usage chunk cut out, 100 chunks as the network would cut them
        body = _stream_body(100)
        chunks = [body[i : i + 1400] for i in range(0, len(body), 1400)]
        sreq = httpx2.Request(
            "POST",
            "https://api.openai.com/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True},
        )
        sinner = Canned(chunks, "text/event-stream")
        stap = sync_t(sinner, tg.recorder, "openai", mod, sync_t._tap_cls)

        def sthrough(t: Any) -> Callable[[], None]:
            def call() -> None:
                r = t.handle_request(sreq)
                for _ in r.stream:
                    pass
                r.stream.close()

            return call

        k = max(1_000, n // 10)
        a, b = _pair(k, sthrough(sinner), sthrough(stap))
        rows.append(_row(f"tap alone, chat stream of 100 chunks, usage hidden ({k:,})", a, b))

        a, b = _pair(n, lambda: None, lambda: task.tool("crm_lookup", kind="read"))
        rows.append(_row("`task.tool(...)`", a, b))

    t_flush = time.perf_counter()
    tg.flush(None)
    t_flush = time.perf_counter() - t_flush
    wall = time.perf_counter() - t_all
    cpu = time.process_time() - cpu0
    s = tg.stats()
    tg.close()
    bg_build, bg_fold = _background(n)
    print("| what | floor p50 µs | with tailguard p50 µs | added p50 µs | added p99 µs |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    print()
    print(
        f"final flush (log fsync + fold into Parquet) "
        f"{t_flush:.2f} s; dropped {s['dropped']}; durable {s['durable']:,}; "
        f"folded {s['folded']:,}; wall {wall:.1f} s, CPU {cpu:.1f} s "
        f"({cpu / wall:.2f} cores busy); load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"off the caller's thread, per event (CPU): building and logging {bg_build:.1f} µs, "
        f"folding into Parquet (Ledger.append) {bg_fold:.1f} µs"
    )


def _background(n: int) -> tuple[float, float]:
    """CPU µs per event of the flusher's work, measured alone: ``n`` calls queued (the flusher
    held back), then built and logged in one drain, then folded in one fold."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-sdk-bg-"))
    tg = tailguard.connect(ledger=tmp / "ledger", flush_interval_s=3600, max_queue=n + 1)
    tg.recorder.batch_size = n + 1  # nothing wakes the flusher: the queue holds all n
    mod, sync_t, _ = _flavour("httpx2")
    tap = sync_t(Canned([CHAT], "application/json"), tg.recorder, "openai", mod, sync_t._tap_cls)
    req = httpx2.Request(
        "POST",
        "https://api.openai.com/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MESSAGES},
    )
    with tg.task(customer="acme"):
        for _ in range(n):
            r = tap.handle_request(req)
            for _ in r.stream:
                pass
            r.stream.close()
    c = time.process_time()
    tg.recorder._drain()
    sink = tg.recorder.sink
    for f in list(sink._pending):  # type: ignore[attr-defined]
        f.result()
    build = (time.process_time() - c) / n * 1e6
    c = time.process_time()
    sink.wal.flush()  # type: ignore[attr-defined]
    fold = (time.process_time() - c) / n * 1e6
    tg.close()
    return build, fold


if __name__ == "__main__":
    main()
