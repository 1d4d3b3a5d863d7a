"""Bad input at the gateway's door (issue 16, F1, F2, F4): refused alone with a 4xx in the
provider's error shape, never a 500 and never a 200 whose event the ledger then refuses.

Loopback only: the gateway and the project's mock provider in process (``httpx.ASGITransport``).
The bounds asserted are the ledger's (docs/events.md: ids are 1..512 characters, ``attempt`` is
an int32 >= 1), not numbers read back from the gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.gateway.conftest import POLICY, Env

MSG = [{"role": "user", "content": "count the words in this prompt"}]


def _post(env: Env, path: str, body: Any, headers: dict[str, Any] | None = None) -> httpx.Response:
    async def main() -> httpx.Response:
        async with env.http() as c:
            h = {"authorization": f"Bearer {env.key}", **(headers or {})}
            return await c.post(path, json=body, headers=h)

    return asyncio.run(main())


@pytest.mark.parametrize(
    "value",
    [
        b"\xc2\xb2",  # "²": str.isdigit() is true, int() fails (F1)
        b"7" * 5000,  # 5,000 digits (F1)
        b"99999999999",  # above int32: the ledger refused it after a 200 (F2)
        b"0",
        b"-3",
        b"2147483648",  # 2^31: one above the ledger's bound
    ],
)
def test_bad_attempt_header_is_a_400_and_nothing_is_called(
    make_env: Callable[..., Env], value: bytes
) -> None:
    env = make_env()
    r = _post(
        env,
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": MSG},
        {"x-tailguard-attempt": value},
    )
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"
    assert "X-Tailguard-Attempt" in r.json()["error"]["message"]
    assert env.mock.requests == 0
    asyncio.run(env.close())
    assert env.events() == []


def test_largest_attempt_the_ledger_holds_is_recorded(make_env: Callable[..., Env]) -> None:
    env = make_env()
    r = _post(
        env,
        "/v1/chat/completions",
        {"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 3},
        {"x-tailguard-attempt": b"2147483647"},
    )
    assert r.status_code == 200
    asyncio.run(env.close())
    [ev] = env.events()
    assert ev["attempt"] == 2**31 - 1


@pytest.mark.parametrize("model", ["", "m" * 513, "m" * 600])
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/messages"])
def test_empty_or_overlong_model_is_a_400_in_the_wire_format(
    make_env: Callable[..., Env], model: str, path: str
) -> None:
    env = make_env()
    r = _post(env, path, {"model": model, "messages": MSG, "max_tokens": 4})
    assert r.status_code == 400
    if path == "/v1/messages":
        assert r.json()["type"] == "error"
        assert r.json()["error"]["type"] == "invalid_request_error"
    else:
        assert r.json()["error"]["type"] == "invalid_request_error"
    assert env.mock.requests == 0
    asyncio.run(env.close())
    assert env.events() == []


def test_model_of_512_characters_is_recorded(make_env: Callable[..., Env]) -> None:
    env = make_env()
    r = _post(env, "/v1/chat/completions", {"model": "m" * 512, "messages": MSG, "max_tokens": 2})
    assert r.status_code == 200
    asyncio.run(env.close())
    [ev] = env.events()
    assert ev["model"] == "m" * 512 and ev["unpriced"]  # unknown model: unpriced, never zero


@pytest.mark.parametrize(
    "field,value",
    [
        ("max_tokens", 10**29),  # F4: decimal.InvalidOperation, a 500
        ("max_tokens", 1e29),
        ("max_tokens", 2**62),  # F14: the guard store's script cannot serialize it
        ("max_completion_tokens", 0),
        ("max_tokens", True),
        ("max_tokens", "16"),
    ],
)
def test_unbounded_output_cap_fails_alone(
    make_env: Callable[..., Env], field: str, value: Any
) -> None:
    """The bad request gets a 400; the next request of the same customer is served and priced."""
    env = make_env(policy=POLICY.format(graceful="false", limit="5"))
    bad = _post(
        env, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MSG, field: value}
    )
    assert bad.status_code == 400
    assert field in bad.json()["error"]["message"]
    good = _post(env, "/v1/chat/completions", {"model": "gpt-4o-mini", "messages": MSG, field: 4})
    assert good.status_code == 200
    asyncio.run(env.close())
    [ev] = env.events()
    # the mock's rule: 6 words in, min(4, 16) words out
    assert (ev["input_tokens"], ev["output_tokens"]) == (6, 4) and not ev["unpriced"]


def test_n_completions_are_all_reserved(make_env: Callable[..., Env]) -> None:
    """OpenAI chat's ``n`` asks for n completions of up to ``max_tokens`` each: the reservation
    covers all of them. gpt-4o-mini's output is $0.60 per million: one completion of 1,000
    tokens reserves $0.0006 (plus ~$0.00002 of input), four reserve $0.0024, over a $0.001 cap."""
    env = make_env(policy=POLICY.format(graceful="false", limit="0.001"))
    body = {"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 1000}
    assert _post(env, "/v1/chat/completions", {**body, "n": 4}).status_code == 429
    assert _post(env, "/v1/chat/completions", {**body, "n": 0}).status_code == 400
    assert _post(env, "/v1/chat/completions", {**body, "n": 129}).status_code == 400
    assert _post(env, "/v1/chat/completions", {**body, "n": 1}).status_code == 200
    asyncio.run(env.close())
