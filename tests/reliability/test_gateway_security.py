"""The gateway's security findings of issue 16 (F19, F5, /metrics, 502 bodies), loopback only.

F19: a client's ``OpenAI-Organization`` / ``OpenAI-Project`` travelled with the operator's key, so
a customer could bill another org or project. F5: the body was read whole before auth, with no
limit (300 MB read, then a 401).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tailguard.gateway.app import create_gateway
from tailguard.gateway.config import load_config
from tests.gateway.conftest import Env, write_config

MSG = [{"role": "user", "content": "count the words in this prompt"}]


def test_only_allow_listed_client_headers_reach_the_provider(
    make_env: Callable[..., Env],
) -> None:
    env = make_env()

    async def main() -> httpx.Response:
        async with env.http() as c:
            return await c.post(
                "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 2},
                headers={
                    "authorization": f"Bearer {env.key}",
                    "OpenAI-Organization": "org-victim",
                    "OpenAI-Project": "proj-victim",
                    "Cookie": "session=1",
                    "X-Internal-Debug": "1",
                    "OpenAI-Beta": "assistants=v2",
                    "User-Agent": "client/1.0",
                },
            )

    r = asyncio.run(main())
    assert r.status_code == 200
    seen = env.mock.last_headers
    for name in ("openai-organization", "openai-project", "cookie", "x-internal-debug"):
        assert name not in seen
    assert seen["openai-beta"] == "assistants=v2" and seen["user-agent"] == "client/1.0"
    assert (
        seen["authorization"] == "Bearer sk-mock-provider"
    )  # the operator's key, not the client's
    asyncio.run(env.close())


class _Body:
    """An ASGI receive() streaming ``total`` bytes in 1 MiB chunks, counting what was read."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.read = 0

    async def __call__(self) -> dict[str, Any]:
        n = min(1 << 20, self.total - self.read)
        self.read += n
        return {"type": "http.request", "body": b"x" * n, "more_body": self.read < self.total}


def _call(gw: Any, key: str | None, receive: _Body, length: int | None) -> tuple[int, bytes]:
    headers = [(b"content-type", b"application/json")]
    if key is not None:
        headers.append((b"authorization", b"Bearer " + key.encode()))
    if length is not None:
        headers.append((b"content-length", str(length).encode()))
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": headers,
        "query_string": b"",
    }
    out: dict[str, Any] = {"body": b""}

    async def send(msg: dict[str, Any]) -> None:
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
        else:
            out["body"] += msg.get("body", b"")

    asyncio.run(gw(scope, receive, send))
    return out["status"], out["body"]


def test_no_key_is_refused_before_any_byte_of_the_body_is_read(
    make_env: Callable[..., Env],
) -> None:
    env = make_env()
    body = _Body(300 << 20)  # the probe's 300 MB
    status, _ = _call(env.gw, None, body, 300 << 20)
    assert status == 401 and body.read == 0
    body = _Body(300 << 20)
    status, _ = _call(env.gw, "tg-not-a-key", body, None)
    assert status == 401 and body.read == 0


def test_a_body_over_the_limit_is_a_413_read_no_further(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``max_body_mb = 2``: a declared 300 MB is refused unread; a chunked one is read up to the
    first chunk past 2 MiB (3 chunks of 1 MiB), not to its end."""
    monkeypatch.setenv("MOCK_PROVIDER_KEY", "sk")
    cfg = load_config(write_config(tmp_path, extra="max_body_mb = 2"))
    from tailguard.gateway.config import create_key
    from tailguard.gateway.mock import create_mock

    key = create_key(cfg.keys, "acme")
    gw = create_gateway(cfg, transport=httpx.ASGITransport(app=create_mock()))
    body = _Body(300 << 20)
    status, out = _call(gw, key, body, 300 << 20)
    assert status == 413 and body.read == 0
    assert b"request_too_large" in out
    body = _Body(300 << 20)
    status, _ = _call(gw, key, body, None)
    assert status == 413 and body.read == 3 << 20
    asyncio.run(gw.aclose())


def test_metrics_token_when_configured(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_PROVIDER_KEY", "sk")
    monkeypatch.setenv("TG_METRICS_TOKEN", "m-secret")
    cfg = load_config(write_config(tmp_path, extra='metrics_token_env = "TG_METRICS_TOKEN"'))
    gw = create_gateway(cfg)

    async def main() -> list[int]:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gw), base_url="http://gw"
        ) as c:
            codes = [
                (await c.get("/metrics")).status_code,
                (await c.get("/metrics", headers={"authorization": "Bearer wrong"})).status_code,
                (await c.get("/metrics", headers={"authorization": "Bearer m-secret"})).status_code,
            ]
        await gw.aclose()
        return codes

    assert asyncio.run(main()) == [401, 401, 200]


def test_metrics_can_be_turned_off(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCK_PROVIDER_KEY", "sk")
    gw = create_gateway(load_config(write_config(tmp_path, extra="metrics = false")))

    async def main() -> int:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=gw), base_url="http://gw"
        ) as c:
            code = (await c.get("/metrics")).status_code
        await gw.aclose()
        return code

    assert asyncio.run(main()) == 404


def test_502_body_does_not_show_the_upstream_address(socket_env: Callable[..., Any]) -> None:
    env = socket_env()
    port = env.mock_srv.port
    env.mock_srv.__exit__()  # the provider goes away
    r = httpx.post(
        env.url + "/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": MSG},
        headers={"authorization": f"Bearer {env.key}"},
        timeout=10,
    )
    assert r.status_code == 502
    assert str(port) not in r.text and "127.0.0.1" not in r.text
    assert r.json()["error"]["code"] == "upstream_unreachable"
