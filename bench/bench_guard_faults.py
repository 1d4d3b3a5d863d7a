"""Redis faults under the guard, bounded and on loopback: every dollar counted once, no cap
overspent past its bound, no call refused with Redis up.

A real ``redis-server`` is started here; the guards ("replicas", as many gateway processes would
hold) run in this process, each driven by client threads that check and settle $0.001 calls.
The ledger is what the clients settled; Redis must hold exactly that once the replicas caught up
(``doubled`` / ``lost``: calls' worth of dollars Redis holds above / below the ledger).

1. **hang** — Redis SIGSTOPped for ``--hang`` seconds in the middle of a ``--seconds`` run
   (fail_open): calls in flight time out but run when Redis resumes.
2. **kill** — Redis stopped (its data saved) for ``--hang`` seconds and started again.
3. **cap** — a $0.01 cap with $0.0075 spent; three replicas, one never saw the customer; Redis
   killed; each replica fires 20 calls of $0.0005. Bound: limit + (N − 1) × headroom over the
   two that saw it = $0.0125.
4. **restart while idle** — fail_closed; Redis restarted between two bursts: no call may be
   refused with Redis up.

    python bench/bench_guard_faults.py                  # ~25 s on 2 cores
    python bench/bench_guard_faults.py --seconds 4 --hang 1

``bench/bench_faults.py`` (the gateway's fault table) includes these rows.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tailguard.guard import Guard, RedisStore, Request, parse_policy

CALL = Decimal("0.001")
Row = dict[str, Any]


class Redis:
    """A redis-server on a fixed port that can be frozen, stopped (saving) and started again."""

    def __init__(self, d: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            sys.exit("redis-server not found: apt-get install -y redis-server")
        self.exe, self.dir = exe, d
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.dir),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(500):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self, *, save: bool) -> None:
        if self.proc is None:
            return
        if save:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(b"SHUTDOWN SAVE\r\n")
                s.recv(64)
        else:
            self.proc.terminate()
        self.proc.wait(timeout=10)
        self.proc = None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, sig)


def _policy(cap: str | None, mode: str) -> Any:
    tier: dict[str, Any] = {"overage": "hard_cap", "hard_limit_usd": cap or 1_000_000}
    return parse_policy(
        {
            "guard": {"default_tier": "t", "fail_mode": mode, "probe_interval_s": 0.2},
            "tiers": {"t": tier},
        }
    )


def _drive(
    guards: list[Guard], seconds: float, fault: Any, threads_per_guard: int = 4
) -> tuple[collections.Counter[str], Decimal, int]:
    """Client threads check and settle $0.001 calls; ``fault`` runs alongside. Returns the
    decisions (by rule), the ledger's spend and the number of calls sent."""
    stop = threading.Event()
    lock = threading.Lock()
    rules: collections.Counter[str] = collections.Counter()
    ledger = [Decimal(0), 0]

    def client(g: Guard) -> None:
        while not stop.is_set():
            d = g.check(Request("acme", CALL))
            with lock:
                ledger[1] += 1
                rules[d.rule or d.action] += 1
            if d.allowed:
                g.settle(d.reservation, CALL)
                with lock:
                    ledger[0] += CALL
            time.sleep(0.002)

    ts = [
        threading.Thread(target=client, args=(g,), daemon=True)
        for g in guards
        for _ in range(threads_per_guard)
    ]
    for t in ts:
        t.start()
    fault()
    time.sleep(seconds)
    stop.set()
    for t in ts:
        t.join()
    return rules, ledger[0], int(ledger[1])


def _caught_up(guards: list[Guard]) -> Decimal:
    """Let every replica probe and catch up, then read what Redis holds."""
    time.sleep(0.5)
    for _ in range(3):
        for g in guards:
            g.release(g.check(Request("acme", Decimal(0))).reservation)
        time.sleep(0.3)
    spent: Decimal = guards[0].status("acme")["spent"]
    return spent


def _row(
    name: str, rules: collections.Counter[str], sent: int, ledger: Decimal, redis: Decimal
) -> Row:
    allowed = rules.pop("allow", 0) + rules.pop("degrade", 0)
    diff = (redis - ledger) / CALL
    return {
        "scenario": name,
        "sent": sent,
        "answered_200": allowed,
        "other": dict(rules),
        "ledger_rows": int(ledger / CALL),
        "usage_invalid": None,
        "wal_rejected": None,
        "lost": int(max(0, -diff)),
        "doubled": int(max(0, diff)),
        "ledger_usd": ledger,
        "redis_usd": redis,
    }


def hang_or_kill(a: argparse.Namespace, tmp: Path, *, kill: bool) -> Row:
    srv = Redis(tmp / ("kill" if kill else "hang"))
    srv.dir.mkdir()
    srv.start()
    guards = [Guard(_policy(None, "fail_open"), RedisStore(srv.url, timeout_s=0.3)) for _ in "ab"]
    try:

        def fault() -> None:
            def run() -> None:
                time.sleep(a.seconds / 2 - a.hang / 2)
                if kill:
                    srv.stop(save=True)
                    time.sleep(a.hang)
                    srv.start()
                else:
                    srv.signal(signal.SIGSTOP)
                    time.sleep(a.hang)
                    srv.signal(signal.SIGCONT)

            threading.Thread(target=run, daemon=True).start()

        rules, ledger, sent = _drive(guards, a.seconds, fault)
        redis = _caught_up(guards)
        what = f"Redis {'stopped and restarted' if kill else 'SIGSTOP'} {a.hang:g} s, 2 replicas"
        return _row(what, rules, sent, ledger, redis)
    finally:
        for g in guards:
            g.close()
        srv.stop(save=False)


def cap_bound(a: argparse.Namespace, tmp: Path) -> Row:
    srv = Redis(tmp / "cap")
    srv.dir.mkdir()
    srv.start()
    pol = _policy("0.01", "fail_open")
    a_, b_, c_ = (Guard(pol, RedisStore(srv.url, timeout_s=0.3)) for _ in "abc")
    try:
        for _ in range(3):
            a_.settle(a_.check(Request("acme", Decimal("0.0025"))).reservation, Decimal("0.0025"))
        b_.check(Request("acme", Decimal("0.003")))  # denied: B has seen $0.0075
        srv.stop(save=True)
        rules: collections.Counter[str] = collections.Counter()
        ledger, half = Decimal("0.0075"), Decimal("0.0005")
        for g in (a_, b_, c_):
            for _ in range(20):
                d = g.check(Request("acme", half))
                rules[d.rule or d.action] += 1
                if d.allowed:
                    g.settle(d.reservation, half)
                    ledger += half
        srv.start()
        redis = _caught_up([a_, b_, c_])
        row = _row("$0.01 cap, Redis killed, 3 replicas (1 never saw it)", rules, 60, ledger, redis)
        row["ledger_rows"] = 3 + int((ledger - Decimal("0.0075")) / half)
        row["doubled"] = int(max(0, (redis - ledger) / half))
        row["lost"] = int(max(0, (ledger - redis) / half))
        row["bound_usd"] = Decimal("0.0125")
        return row
    finally:
        for g in (a_, b_, c_):
            g.close()
        srv.stop(save=False)


def restart_idle(a: argparse.Namespace, tmp: Path) -> Row:
    """Bursts of 10 concurrent ``acheck`` (the gateway's path: ten pooled connections), Redis
    restarted between two bursts; then 20 sequential ``check``."""
    srv = Redis(tmp / "idle")
    srv.dir.mkdir()
    srv.start()
    g = Guard(_policy(None, "fail_closed"), RedisStore(srv.url))
    rules: collections.Counter[str] = collections.Counter()
    ledger = [Decimal(0)]

    def count(d: Any) -> None:
        rules[d.rule or d.action] += 1
        if d.allowed:
            ledger[0] += CALL

    async def bursts() -> None:
        for burst in range(2):
            if burst:
                srv.stop(save=True)
                srv.start()
            ds = await asyncio.gather(*(g.acheck(Request("acme", CALL)) for _ in range(10)))
            for d in ds:
                count(d)
                await g.asettle(d.reservation, CALL)
        await g.store.aclose()  # type: ignore[attr-defined]

    try:
        asyncio.run(bursts())
        for _ in range(20):
            d = g.check(Request("acme", CALL))
            count(d)
            g.settle(d.reservation, CALL)
        return _row(
            "Redis restarted while idle (fail_closed)", rules, 40, ledger[0], _caught_up([g])
        )
    finally:
        g.close()
        srv.stop(save=False)


def rows(a: argparse.Namespace, tmp: Path) -> list[Row]:
    """Every scenario's row (the shape of ``bench/bench_faults.py``'s table, plus dollars)."""
    return [
        hang_or_kill(a, tmp, kill=False),
        hang_or_kill(a, tmp, kill=True),
        cap_bound(a, tmp),
        restart_idle(a, tmp),
    ]


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--redis-seconds", dest="seconds", type=float, default=6.0, help="run length")
    ap.add_argument("--hang", type=float, default=2.0, help="seconds Redis is frozen / down")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="length of each loaded run")
    ap.add_argument("--hang", type=float, default=2.0, help="seconds Redis is frozen / down")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="tg-redis-faults-") as t:
        out = rows(a, Path(t))
    cols = [
        "scenario",
        "sent",
        "allowed",
        "refused (rule)",
        "ledger $",
        "Redis $",
        "doubled",
        "lost",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    bad = 0
    for r in out:
        other = ", ".join(f"{k} {n}" for k, n in sorted(r["other"].items())) or "-"
        bound = f" (bound {r['bound_usd']})" if "bound_usd" in r else ""
        cells = [r["scenario"], r["sent"], r["answered_200"], other, f"{r['ledger_usd']}{bound}"]
        cells += [r["redis_usd"], r["doubled"], r["lost"]]
        print("| " + " | ".join(str(c) for c in cells) + " |")
        bad += r["doubled"] + r["lost"]
        if "bound_usd" in r and r["ledger_usd"] > r["bound_usd"]:
            bad += 1
        if "restarted while idle" in r["scenario"] and r["other"]:
            bad += 1
    print(f"\ndoubled + lost + bounds broken + refusals with Redis up: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
