"""Fault injection on the gateway, bounded and on loopback: nothing answered is lost.

Two scenarios, each a real ``tailguard gateway`` process:

1. **SIGKILL under load** — client threads send chat completions (each with a unique
   ``X-Tailguard-Task``) to a gateway in front of ``tailguard mock-upstream``; the gateway is
   SIGKILLed ``--kills`` times and restarted on the same port (it replays its write-ahead log at
   start); at the end it is stopped with SIGTERM. Then the ledger is read: every request the client
   saw answered 200 must be in it (lost = 0), and no call twice (doubled = 0).
2. **Faulty upstream** — the project's mock provider, in this process, answers with one fault at
   a time (usage that breaks the ledger's rules, a 200 that is not JSON, a hang past the
   gateway's timeout, a stream cut short, the provider gone). Per fault: what the clients got, what
   the ledger holds, how many rows are flagged ``usage_invalid``, and how many events the
   write-ahead log had to reject (``wal/rejected.jsonl``; must be 0).

Redis faults (SIGSTOP, restart) belong to the guard's bench: ``redis_faults`` below is the hook
where they plug in (same row shape), so one command prints the whole table.

    python bench/bench_faults.py                   # ~1 minute on 2 cores
    python bench/bench_faults.py --seconds 10 --kills 2 --per-fault 20   # shorter
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
Row = dict[str, Any]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "tailguard", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )


def wait_up(url: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def write_config(d: Path, upstream: str, *, flush_s: float, timeout_s: float = 600) -> Path:
    p = d / "gateway.toml"
    p.write_text(
        "[gateway]\n"
        f'ledger = "{d / "ledger"}"\n'
        f"flush_interval_s = {flush_s}\n"
        f"timeout_s = {timeout_s}\n"
        "[[upstream]]\n"
        'provider = "openai"\n'
        f'base_url = "{upstream}"\n'
        'api_key_env = "MOCK_PROVIDER_KEY"\n'
    )
    return p


def ledger_calls(ledger: Path) -> list[tuple[str, str, str]]:
    """(event_id, task_id, status) of every llm_call in the ledger's live segments."""
    from tailguard.ledger.store import Ledger

    led = Ledger(ledger)
    if not led.segment_files():
        return []
    con = led.connect()
    try:
        return con.execute(
            "SELECT event_id, task_id, status FROM events WHERE kind = 'llm_call'"
        ).fetchall()
    finally:
        con.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- 1. SIGKILL under load -----------------------------------------------------------------------


def sigkill_under_load(a: argparse.Namespace, tmp: Path) -> list[Row]:
    from tailguard.gateway.keys import create_key

    d = tmp / "sigkill"
    d.mkdir()
    env = dict(os.environ, MOCK_PROVIDER_KEY="sk-mock", PYTHONPATH=str(ROOT))
    mport, gport = free_port(), free_port()
    mock = start(["mock-upstream", "--port", str(mport), "--latency-ms", "5"], env, d / "mock.log")
    cfg = write_config(d, f"http://127.0.0.1:{mport}/v1", flush_s=1.0)
    key = create_key(d / "keys.json", "acme")
    gw_args = ["gateway", "--config", str(cfg), "--port", str(gport)]
    url = f"http://127.0.0.1:{gport}"
    gw = start(gw_args, env, d / "gateway.log")
    answered: list[str] = []
    failed = collections.Counter[str]()
    lock = threading.Lock()
    stop = threading.Event()
    ids = itertools.count()
    try:
        wait_up(f"http://127.0.0.1:{mport}", mock)
        wait_up(url, gw)

        def client() -> None:
            with httpx.Client(timeout=10) as c:
                while not stop.is_set():
                    task = f"t{next(ids)}"
                    try:
                        r = c.post(
                            url + "/v1/chat/completions",
                            headers={"Authorization": f"Bearer {key}", "X-Tailguard-Task": task},
                            json={
                                "model": "gpt-4o-mini",
                                "messages": [{"role": "user", "content": "one two three"}],
                                "max_tokens": 4,
                            },
                        )
                        r.json()  # a whole body: the answer was complete
                    except (httpx.HTTPError, ValueError) as exc:
                        with lock:
                            failed[type(exc).__name__] += 1
                        time.sleep(0.1)  # the gateway is restarting
                        continue
                    with lock:
                        if r.status_code == 200:
                            answered.append(task)
                        else:
                            failed[str(r.status_code)] += 1

        threads = [threading.Thread(target=client) for _ in range(a.clients)]
        for t in threads:
            t.start()
        step = a.seconds / (a.kills + 1)
        for _ in range(a.kills):
            time.sleep(step)
            gw.send_signal(signal.SIGKILL)
            gw.wait()
            gw = start(gw_args, env, d / "gateway.log")
            wait_up(url, gw)
        time.sleep(step)
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop.set()
        _stop(gw)
        _stop(mock)
    rows = ledger_calls(d / "ledger")
    tasks = collections.Counter(t for _, t, _ in rows)
    lost = sum(1 for t in answered if t not in tasks)
    doubled = sum(n - 1 for n in tasks.values() if n > 1) + (
        len(rows) - len({e for e, _, _ in rows})
    )
    return [
        {
            "scenario": f"gateway SIGKILL x{a.kills} under load",
            "sent": len(answered) + sum(failed.values()),
            "answered_200": len(answered),
            "other": dict(failed),
            "ledger_rows": len(rows),
            "usage_invalid": sum(1 for *_, s in rows if s == "usage_invalid"),
            "wal_rejected": _rejected(d / "ledger"),
            "lost": lost,
            "doubled": doubled,
        }
    ]


def _rejected(ledger: Path) -> int:
    p = ledger / "wal" / "rejected.jsonl"
    return len(p.read_text().splitlines()) if p.exists() else 0


# --- 2. Faulty upstream --------------------------------------------------------------------------

#: (name, mock fault, model, stream): each fault is sent ``--per-fault`` times
FAULTS: list[tuple[str, str | None, str, bool]] = [
    ("sound upstream", None, "gpt-4o-mini", False),
    ("reasoning > completion", "reasoning_over", "gpt-4o-mini", False),
    ("cached > prompt", "cache_over", "gpt-4o-mini", False),
    ("prompt_tokens = 2^64", "huge", "gpt-4o-mini", False),
    ("200 with an HTML body", "not_json", "gpt-4o-mini", False),
    ("hang past timeout_s", None, "gpt-4o-mini-hang", False),
    ("stream cut short", None, "gpt-4o-mini-break", True),
    ("provider gone", None, "gpt-4o-mini", False),
]


def faulty_upstream(a: argparse.Namespace, tmp: Path) -> list[Row]:
    import uvicorn

    from tailguard.gateway.keys import create_key
    from tailguard.gateway.mock import create_mock

    d = tmp / "faults"
    d.mkdir()
    mock = create_mock()
    mock.hang_s = 3.0
    mport, gport = free_port(), free_port()
    server = uvicorn.Server(
        uvicorn.Config(mock, host="127.0.0.1", port=mport, log_level="critical", lifespan="off")
    )
    srv_thread = threading.Thread(target=server.run, daemon=True)
    srv_thread.start()
    env = dict(os.environ, MOCK_PROVIDER_KEY="sk-mock", PYTHONPATH=str(ROOT))
    cfg = write_config(d, f"http://127.0.0.1:{mport}/v1", flush_s=1.0, timeout_s=1.0)
    key = create_key(d / "keys.json", "acme")
    gw = start(["gateway", "--config", str(cfg), "--port", str(gport)], env, d / "gateway.log")
    url = f"http://127.0.0.1:{gport}"
    codes: dict[str, collections.Counter[str]] = {}
    answered: set[str] = set()
    try:
        wait_up(f"http://127.0.0.1:{mport}")
        wait_up(url, gw)
        for i, (name, fault, model, stream) in enumerate(FAULTS):
            mock.fault = fault
            if name == "provider gone":
                server.should_exit = True
                srv_thread.join(10)

            def one(n: int, i: int = i, model: str = model, stream: bool = stream) -> str:
                task = f"f{i}-{n}"
                with httpx.Client(timeout=10) as c:
                    try:
                        r = c.post(
                            url + "/v1/chat/completions",
                            headers={
                                "Authorization": f"Bearer {key}",
                                "X-Tailguard-Task": task,
                            },
                            json={
                                "model": model,
                                "messages": [{"role": "user", "content": "one two three"}],
                                "max_tokens": 4,
                                "stream": stream,
                            },
                        )
                        r.read()
                    except httpx.HTTPError as exc:
                        return type(exc).__name__
                    if r.status_code == 200:
                        answered.add(task)  # set.add is atomic under the GIL
                    return str(r.status_code)

            with cf.ThreadPoolExecutor(4) as ex:
                codes[name] = collections.Counter(ex.map(one, range(a.per_fault)))
    finally:
        server.should_exit = True
        _stop(gw)
    rows = ledger_calls(d / "ledger")
    out: list[Row] = []
    for i, (name, *_rest) in enumerate(FAULTS):
        mine = [r for r in rows if r[1].startswith(f"f{i}-")]
        got = codes.get(name, collections.Counter())
        out.append(
            {
                "scenario": f"upstream: {name}",
                "sent": sum(got.values()),
                "answered_200": got.get("200", 0),
                "other": {k: v for k, v in got.items() if k != "200"},
                "ledger_rows": len(mine),
                "usage_invalid": sum(1 for r in mine if r[2] == "usage_invalid"),
                "wal_rejected": None,
                "lost": sum(1 for t in answered if t.startswith(f"f{i}-"))
                - sum(1 for r in mine if r[1] in answered),
                "doubled": len(mine) - len({r[1] for r in mine}),
            }
        )
    out[-1]["wal_rejected"] = _rejected(d / "ledger")  # one log for all the faults
    return out


# --- 3. Redis faults: the guard's ----------------------------------------------------------------


def redis_faults(a: argparse.Namespace, tmp: Path) -> list[Row]:
    """The guard's Redis faults (``bench/bench_guard_faults.py``: SIGSTOP and a stop under
    load, a cap with Redis killed, a restart while idle), rows of the same shape; there
    ``ledger_rows`` counts settled calls and lost / doubled are calls' worth of dollars."""
    import bench_guard_faults

    return bench_guard_faults.rows(argparse.Namespace(seconds=6.0, hang=2.0), tmp)


SCENARIOS = [sigkill_under_load, faulty_upstream, redis_faults]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the SIGKILL run")
    ap.add_argument("--kills", type=int, default=3, help="SIGKILLs during that run")
    ap.add_argument("--clients", type=int, default=8, help="client threads of the SIGKILL run")
    ap.add_argument("--per-fault", type=int, default=40, help="requests per upstream fault")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tg-faults-") as t:
        rows = [r for scenario in SCENARIOS for r in scenario(a, Path(t))]
    if a.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ["scenario", "sent", "answered_200", "other", "ledger_rows", "usage_invalid"]
    cols += ["wal_rejected", "lost", "doubled"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, dict):
                v = ", ".join(f"{k} {n}" for k, n in sorted(v.items())) or "-"
            cells.append("-" if v is None else str(v))
        print("| " + " | ".join(cells) + " |")
    bad = sum(r["lost"] + r["doubled"] + (r["wal_rejected"] or 0) for r in rows)
    print(f"\nlost + doubled + rejected: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
