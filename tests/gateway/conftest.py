"""Gateway fixtures: the mock provider and the gateway, in process or on real loopback sockets.

In process: the gateway's upstream transport is ``httpx.ASGITransport(mock)`` and the SDKs reach
the gateway through another ``ASGITransport`` (async SDK clients only: ASGI is async).
Over sockets: uvicorn servers on 127.0.0.1 and free ports, in threads; the sync SDK clients.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from tailguard.gateway.app import Gateway, create_gateway
from tailguard.gateway.config import create_key, load_config
from tailguard.gateway.mock import MockUpstream, create_mock

POLICY = """
[guard]
default_tier = "free"
graceful = {graceful}
[tiers.free]
period = "month"
hard_limit_usd = {limit}
overage = "hard_cap"
rpm = 100000
tpm = 100000000
user_rpm = 100000
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(
    d: Path,
    *,
    upstream: str = "http://mock.invalid/v1",
    policy: str | None = None,
    durability: str = "fsync",
    flush_interval_s: float = 0.2,
    extra: str = "",
) -> Path:
    lines = [
        "[gateway]",
        f'ledger = "{d / "ledger"}"',
        f'durability = "{durability}"',
        f"flush_interval_s = {flush_interval_s}",
        "default_max_output_tokens = 64",
        extra,
    ]
    if policy is not None:
        (d / "policy.toml").write_text(policy)
        lines.append('policy = "policy.toml"')
    for prov in ("openai", "anthropic"):
        lines += [
            "[[upstream]]",
            f'provider = "{prov}"',
            f'base_url = "{upstream}"',
            'api_key_env = "MOCK_PROVIDER_KEY"',
            'models = ["*"]',
        ]
    p = d / "gateway.toml"
    p.write_text("\n".join(lines) + "\n")
    return p


class Env:
    """A gateway wired to an in-process mock, and what a test needs around it."""

    def __init__(self, tmp: Path, mock: MockUpstream, gw: Gateway, cfg_path: Path) -> None:
        self.tmp = tmp
        self.mock = mock
        self.gw = gw
        self.cfg_path = cfg_path
        self.key = self.new_key("acme")

    def new_key(self, customer: str, user: str | None = None) -> str:
        from tailguard.gateway.config import load_keys

        k = create_key(self.gw.cfg.keys, customer, user)
        self.gw.keys = load_keys(self.gw.cfg.keys)
        return k

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.gw), base_url="http://gw")

    async def close(self) -> None:
        await self.gw.aclose()

    def events(self, kind: str = "llm_call") -> list[dict[str, Any]]:
        """Ledger rows of one kind (after the gateway was closed: the log is folded in)."""
        from tailguard.ledger.store import Ledger

        led = Ledger(self.gw.cfg.ledger)
        if not led.segment_files():
            return []
        con = led.connect()  # the live segments (a compaction's sources are not counted)
        cur = con.execute("SELECT * FROM events WHERE kind = ? ORDER BY ts", [kind])
        cols = [c[0] for c in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


@pytest.fixture
def make_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Env]]:
    monkeypatch.setenv("MOCK_PROVIDER_KEY", "sk-mock-provider")
    made: list[Env] = []

    def make(*, policy: str | None = None, durability: str = "fsync") -> Env:
        mock = create_mock()
        cfg_path = write_config(tmp_path, policy=policy, durability=durability)
        gw = create_gateway(load_config(cfg_path), transport=httpx.ASGITransport(app=mock))
        env = Env(tmp_path, mock, gw, cfg_path)
        made.append(env)
        return env

    yield make
    for env in made:
        if env.gw._closers:
            asyncio.run(env.gw.aclose())


class ServerThread:
    """A uvicorn server on a free loopback port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                lifespan="on",  # the gateway closes its pool and log in its own loop
                loop="asyncio",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


INGEST_KEY = "tg-ingest-test-key-0123456789"
"""The ingest key of ``serve_ingest_gateway``'s gateway (it writes events for any customer)."""


def serve_ingest_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Gateway]]:
    """Yield ``(url, gateway)``: a real gateway on loopback that takes ``INGEST_KEY``.

    Why one function: the gateway's own ``POST /v1/events`` tests and the SDK's gateway-sink
    tests must post to the same gateway, configured once (flush every 0.2 s), so a change to
    how the gateway is set up for ingest reaches both. Use it as a fixture body:
    ``yield from serve_ingest_gateway(tmp_path, monkeypatch)``.
    """
    monkeypatch.setenv("TAILGUARD_INGEST_KEY", INGEST_KEY)
    gw = create_gateway(load_config(write_config(tmp_path, flush_interval_s=0.2)))
    with ServerThread(gw) as srv:
        yield srv.url, gw


class SocketEnv:
    """Mock and gateway both on real sockets."""

    def __init__(self, tmp: Path, policy: str | None) -> None:
        self.mock = create_mock()
        self.mock.hang_s = 3.0
        self.mock_srv = ServerThread(self.mock).__enter__()
        cfg_path = write_config(
            tmp, upstream=self.mock_srv.url + "/v1", policy=policy, extra="timeout_s = 0.5"
        )
        self.gw = create_gateway(load_config(cfg_path))
        self.gw_srv = ServerThread(self.gw).__enter__()
        self.key = create_key(self.gw.cfg.keys, "acme", None)
        from tailguard.gateway.config import load_keys

        self.gw.keys = load_keys(self.gw.cfg.keys)
        self.url = self.gw_srv.url

    def close(self) -> None:
        self.gw_srv.__exit__()
        self.mock_srv.__exit__()


@pytest.fixture
def socket_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., SocketEnv]]:
    monkeypatch.setenv("MOCK_PROVIDER_KEY", "sk-mock-provider")
    made: list[SocketEnv] = []

    def make(policy: str | None = None) -> SocketEnv:
        e = SocketEnv(tmp_path, policy)
        made.append(e)
        return e

    yield make
    for e in made:
        e.close()
