"""Helpers shared by the gateway's tests (plain functions; fixtures live in conftest.py).

- ``oa`` / ``an``: the official OpenAI and Anthropic async SDK clients, wired to an in-process
  gateway through an ASGI transport.
- ``start_cli`` / ``wait_healthy``: real ``tailguard`` subprocesses (gateway, mock upstream) on
  loopback ports, for the tests that kill or restart them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import httpx2
import openai

from tests.gateway.conftest import Env

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (the working directory of the subprocesses)."""


def start_cli(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``python -m tailguard <args>`` from the repo root; its stderr goes to ``LOG_DIR``."""
    log = Path(env["LOG_DIR"]) / f"{args[0]}-{time.monotonic_ns()}.log"
    with log.open("wb") as fh:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "tailguard", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=fh,
        )


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    """Wait (30 s at most) until ``url/healthz`` answers 200; fail at once if ``proc`` exits."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=0.5).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def oa(env: Env, key: str | None = None, **kw: Any) -> openai.AsyncOpenAI:
    """The official OpenAI async client, talking to the gateway in process (ASGI), no retries."""
    return openai.AsyncOpenAI(
        api_key=key or env.key,
        base_url="http://gw/v1",
        http_client=httpx.AsyncClient(transport=httpx.ASGITransport(app=env.gw)),
        max_retries=0,
        **kw,
    )


def an(env: Env, key: str | None = None, **kw: Any) -> anthropic.AsyncAnthropic:
    """The official Anthropic async client, talking to the gateway in process, no retries."""
    # this anthropic SDK is built on httpx2 (a fork): its own client and ASGI transport
    return anthropic.AsyncAnthropic(
        api_key=key or env.key,
        base_url="http://gw",
        http_client=httpx2.AsyncClient(transport=httpx2.ASGITransport(app=env.gw)),
        max_retries=0,
        **kw,
    )


def capture_events(env: Env) -> list[dict[str, Any]]:
    """The events the gateway hands to its write-ahead log from now on (with the pricing
    inputs, which the ledger folds into the cost and does not store), collected as they pass."""
    seen: list[dict[str, Any]] = []
    submit = env.gw.wal.submit

    def spy(events: Any) -> Any:
        events = list(events)
        seen.extend(events)
        return submit(events)

    env.gw.wal.submit = spy
    return seen


def capture_checks(env: Env) -> list[Any]:
    """The requests the gateway asks its guard about from now on, collected as they pass."""
    asked: list[Any] = []
    check = env.gw.guard.acheck

    async def spy(req: Any) -> Any:
        asked.append(req)
        return await check(req)

    env.gw.guard.acheck = spy
    return asked


#: an Anthropic system prompt with a 1-hour and a 5-minute cache breakpoint, and the server
#: web-search tool: the gateway's and the SDK's tier-and-search tests send the same request
SYSTEM_1H_5M = [
    {
        "type": "text",
        "text": "a b c d e f g h",
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    },
    {"type": "text", "text": "p q r s", "cache_control": {"type": "ephemeral"}},
]
WEB_SEARCH_TOOLS = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}]
