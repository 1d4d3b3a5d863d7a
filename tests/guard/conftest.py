"""Fixtures: a real redis-server on a free port in a tmp dir, both stores, a settable clock."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from tailguard.guard import Guard, MemoryStore, parse_policy
from tailguard.guard.policy import Policy

REDIS = shutil.which("redis-server")

#: 2026-11-10 12:00:15 UTC: 15 s into a minute, 20 days 11:59:45 before the month ends
T0 = dt.datetime(2026, 11, 10, 12, 0, 15, tzinfo=dt.UTC).timestamp()


class Clock:
    """A clock the test moves by hand (epoch seconds)."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A real redis-server process; ``stop()`` / ``start()`` for fault tests (same port)."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS is not None
        self.proc = subprocess.Popen(
            [
                REDIS,
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
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self, *, save: bool = False) -> None:
        """Stop the server; ``save`` writes its data first so a restart brings it back."""
        if self.proc is not None and save:
            with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
                s.sendall(b"SHUTDOWN SAVE\r\n")
                s.recv(64)
            self.proc.wait(timeout=10)
            self.proc = None
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


def _no_redis() -> None:
    """Without a redis-server: skip on a developer's machine, fail on CI (never a silent pass)."""
    msg = "redis-server is not installed (scripts/test installs it)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    if REDIS is None:
        _no_redis()
    srv = RedisServer(tmp_path_factory.mktemp("redis"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, which the test may stop and restart."""
    if REDIS is None:
        _no_redis()
    srv = RedisServer(tmp_path / "redis")
    srv.dir.mkdir()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(params=["memory", "redis"])
def store_kind(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        request.getfixturevalue("redis_server")
    return str(request.param)


@pytest.fixture
def make_store(
    store_kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Any]]:
    """A factory of fresh stores of the parametrised kind (one Redis db, flushed first)."""
    made: list[Any] = []

    def make() -> Any:
        if store_kind == "memory":
            s: Any = MemoryStore(tmp_path / f"state{len(made)}")
        else:
            from tailguard.guard import RedisStore

            srv: RedisServer = request.getfixturevalue("redis_server")
            s = RedisStore(srv.url)
            if not made:
                s.client.flushdb()
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


class Events(list[dict[str, Any]]):
    """A sink that keeps what it is given."""

    def __call__(self, batch: list[dict[str, Any]]) -> None:
        self.extend(batch)

    def actions(self) -> list[tuple[str, str]]:
        return [(e["action"], e["rule"]) for e in self]


@pytest.fixture
def events() -> Events:
    return Events()


def policy(
    tier: dict[str, Any],
    guard: dict[str, Any] | None = None,
    customers: dict[str, Any] | None = None,
) -> Policy:
    """A one-tier policy ("t", the default tier) for a test."""
    data: dict[str, Any] = {"guard": {"default_tier": "t", **(guard or {})}, "tiers": {"t": tier}}
    if customers:
        data["customers"] = customers
    return parse_policy(data)


@pytest.fixture
def make_guard(
    make_store: Callable[[], Any], clock: Clock, events: Events
) -> Iterator[Callable[..., Guard]]:
    guards: list[Guard] = []

    def make(tier: dict[str, Any], **kw: Any) -> Guard:
        g = Guard(
            policy(tier, kw.pop("guard", None), kw.pop("customers", None)),
            kw.pop("store", None) or make_store(),
            sink=events,
            clock=clock,
            **kw,
        )
        guards.append(g)
        return g

    yield make
    for g in guards:
        if g.alerter is not None:
            g.alerter.close()


class _Hook(BaseHTTPRequestHandler):
    got: list[dict[str, Any]]

    def do_POST(self) -> None:
        n = int(self.headers["Content-Length"])
        self.server.got.append(json.loads(self.rfile.read(n)))  # type: ignore[attr-defined]
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_a: Any) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[HTTPServer]:
    """A local webhook receiver: ``hook.got`` holds each POSTed JSON body, in order."""
    srv = HTTPServer(("127.0.0.1", 0), _Hook)
    srv.got = []  # type: ignore[attr-defined]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
