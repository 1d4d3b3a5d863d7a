"""Shared by the dashboard's tests: the CLI's JSON for a comparison, a real server, the browser.

The dashboard's figures are checked against the CLI's ``--json`` for the same ledger (the same
library calls must give the same bytes), and against the asymmetric ledger's hand-worked
figures (tests/fixtures_asymmetric.py).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

#: Debian's chromium, launched the way this machine allows (no sandbox, no network chatter)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def cli_json(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """What ``tailguard ARGS --json`` prints (run in process), asserting it succeeded."""
    from tailguard.cli.app import run

    capsys.readouterr()
    code = run([*args, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free loopback port in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the dashboard did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def ingest_lean_tool_call(led: Any, tmp_path: Any, event_id: str, task_id: str) -> None:
    """Ingest one more event into the asymmetric ledger (``tests/fixtures_asymmetric``): a
    ``crm_update`` write tool call of LEAN on 2025-06-11, priced at $0.02 by its price table,
    so a page that reads LEAN's June cost sees it move by exactly $0.02."""
    import json

    from tailguard.ledger import ingest
    from tailguard.pricing import PriceBook
    from tests.fixtures_asymmetric import PRICES_TOML

    event = {
        "event_id": event_id, "kind": "tool_call", "ts": "2025-06-11T10:00:00Z",
        "customer_id": "LEAN", "task_id": task_id, "feature": "support",
        "tool": "crm_update", "tool_kind": "write",
    }  # fmt: skip
    extra = tmp_path / f"{event_id}.jsonl"
    extra.write_text(json.dumps(event) + "\n")
    prices = tmp_path / "p.toml"
    prices.write_text(PRICES_TOML)
    ingest([extra], led, prices=PriceBook.load(prices))
