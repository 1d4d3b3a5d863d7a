"""``tailguard ui`` for real: the command starts the server on a free port and serves the pages
and their twins over a socket; a token set by the environment closes it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from tailguard.ledger import Ledger
from tests.ui.helpers import free_port


def _get(url: str, token: str | None = None) -> tuple[int, bytes]:
    """(status, body) of a GET, the response closed."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


@contextmanager
def _ui(ledger: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    import os

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tailguard",
            "ui",
            "--ledger",
            str(ledger),
            "--port",
            str(port),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(base + "/static/style.css")  # any answer (a 401 with a token) will do
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    _out, err = proc.communicate()
                    raise AssertionError(f"tailguard ui did not start: {err[-2000:]}") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_the_command_serves_the_pages(asym: Ledger) -> None:
    with _ui(asym.path) as base:
        status, page = _get(base + "/customers?period=2025-06")
        assert status == 200 and b"WIN" in page and b"$1.89" in page
        status, raw = _get(base + "/api/customers?period=2025-06")
        rows = json.loads(raw, parse_float=Decimal)
        assert rows[0]["customer_id"] == "WIN" and rows[0]["cost_usd"] == Decimal("1.8877")


def test_a_token_from_the_environment_closes_it(asym: Ledger) -> None:
    with _ui(asym.path, env={"TAILGUARD_UI_TOKEN": "s3cret"}) as base:
        assert _get(base + "/api/customers")[0] == 401
        assert _get(base + "/api/customers", token="wrong")[0] == 401
        assert _get(base + "/api/customers", token="s3cret")[0] == 200
