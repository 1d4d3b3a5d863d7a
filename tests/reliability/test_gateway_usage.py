"""An upstream whose usage breaks the ledger's rules (issue 16, F3) or whose 200 is not JSON:
the call is recorded, usage repaired on the safe side, ``status = "usage_invalid"``, unpriced
(cost unknown, never zero) and counted among the unpriced calls of ``report customers``.

The mock's rule (docs/gateway.md): the prompt "count the words in this prompt" is 6 tokens,
``max_tokens = 5`` gives 5 completion tokens. Each fault and its repaired counts, by hand:

- reasoning 10 above completion 5: output becomes 10 (output includes reasoning);
- cached 11 above prompt 6: input becomes 11 (input includes cache reads);
- prompt 2^64 (no int64 holds it): the count means nothing, input becomes 0;
- a 200 with an HTML body: no usage at all, 0 tokens.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from tailguard.cli.app import app
from tailguard.ledger.store import Ledger
from tests.gateway.conftest import POLICY, Env

MSG = [{"role": "user", "content": "count the words in this prompt"}]


BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 5}, separators=(",", ":")
).encode()


def _chat(env: Env) -> httpx.Response:
    async def main() -> httpx.Response:
        async with env.http() as c:
            return await c.post(
                "/v1/chat/completions",
                content=BODY,
                headers={"authorization": f"Bearer {env.key}", "content-type": "application/json"},
            )

    return asyncio.run(main())


@pytest.mark.parametrize(
    "fault,tokens",
    [
        ("reasoning_over", (6, 10, 0, 10)),
        ("cache_over", (11, 5, 11, 0)),
        ("huge", (0, 5, 0, 0)),
        ("not_json", (0, 0, 0, 0)),
    ],
)
def test_invalid_usage_is_recorded_repaired_flagged_and_unpriced(
    make_env: Callable[..., Env], fault: str, tokens: tuple[int, int, int, int]
) -> None:
    env = make_env()
    env.mock.fault = fault
    r = _chat(env)
    assert r.status_code == 200
    asyncio.run(env.close())
    [ev] = env.events()
    got = (
        ev["input_tokens"],
        ev["output_tokens"],
        ev["cache_read_tokens"],
        ev["reasoning_tokens"],
    )
    assert got == tokens
    assert ev["status"] == "usage_invalid"
    assert ev["unpriced"] and ev["cost_usd"] is None  # gpt-4o-mini has a price: not used
    assert not (env.gw.cfg.ledger / "wal" / "rejected.jsonl").exists()


def test_flagged_call_counts_as_unpriced_in_the_customer_report(
    make_env: Callable[..., Env],
) -> None:
    env = make_env()
    assert _chat(env).status_code == 200  # a sound call
    env.mock.fault = "huge"
    assert _chat(env).status_code == 200
    asyncio.run(env.close())
    res = CliRunner().invoke(
        app, ["report", "customers", "--ledger", str(env.gw.cfg.ledger), "--json"]
    )
    assert res.exit_code == 0, res.output
    rows: list[dict[str, Any]] = json.loads(res.output)
    [acme] = [row for row in rows if row["customer_id"] == "acme"]
    assert acme["unpriced_calls"] == 1


def test_flagged_call_keeps_its_reservation_as_spend(make_env: Callable[..., Env]) -> None:
    """The cost of a flagged call is unknown: the guard keeps the worst case it reserved, so a
    customer cannot spend past a cap through an upstream that reports nonsense.

    gpt-4o-mini lists $0.15 / $0.60 per million input / output tokens. One call reserves
    len(BODY) input tokens (the input bound) and 5 output tokens; a hard limit of 20.5 such
    reservations serves exactly 20 calls. Settled at the sound-looking (0 in, 5 out) = $0.000003
    instead, the same budget would serve every one of the 40 calls tried.
    """
    per_call = (len(BODY) * Decimal("0.15") + 5 * Decimal("0.60")) / 1_000_000
    limit = per_call * Decimal("20.5")
    env = make_env(policy=POLICY.format(graceful="false", limit=limit))
    env.mock.fault = "huge"
    codes = [_chat(env).status_code for _ in range(40)]
    asyncio.run(env.close())
    assert codes == [200] * 20 + [429] * 20
    calls = env.events()
    assert len(calls) == 20 and all(e["status"] == "usage_invalid" for e in calls)


def test_invalid_usage_in_a_stream_is_recorded_flagged(make_env: Callable[..., Env]) -> None:
    """The same fault in a stream: the usage chunk the gateway asked for says 2^64 prompt
    tokens; the client gets its whole stream, the ledger a flagged, unpriced call (6 words in,
    5 out, input dropped to 0)."""
    env = make_env()
    env.mock.fault = "huge"

    async def main() -> str:
        async with env.http() as c:
            r = await c.post(
                "/v1/chat/completions",
                json={"model": "gpt-4o-mini", "messages": MSG, "max_tokens": 5, "stream": True},
                headers={"authorization": f"Bearer {env.key}"},
            )
            return r.text

    text = asyncio.run(main())
    assert text.rstrip().endswith("data: [DONE]")
    assert '"prompt_tokens"' not in text  # the client did not ask for the usage chunk: withheld
    asyncio.run(env.close())
    [ev] = env.events()
    assert (ev["input_tokens"], ev["output_tokens"]) == (0, 5)
    assert ev["status"] == "usage_invalid" and ev["unpriced"]


def test_invalid_usage_in_a_cut_stream_is_recorded_with_both_marks(
    socket_env: Callable[..., Any],
) -> None:
    """An Anthropic stream whose ``message_start`` says 2^64 input tokens, cut after three
    words (real sockets: the cut is a reset connection): recorded (not rejected), status
    ``usage_invalid``, unpriced; input dropped to 0, output 1 (``message_start``'s count: no
    ``message_delta`` came)."""
    env = socket_env()
    env.mock.fault = "huge"
    body = {"model": "claude-haiku-4-5-break", "messages": MSG, "max_tokens": 8, "stream": True}
    with (
        httpx.Client(timeout=10) as c,
        c.stream("POST", env.url + "/v1/messages", json=body, headers={"x-api-key": env.key}) as r,
        pytest.raises(httpx.HTTPError),
    ):
        for _ in r.iter_bytes():
            pass
    env.close()
    con = Ledger(env.gw.cfg.ledger).connect()
    try:
        cur = con.execute("SELECT * FROM events WHERE kind = 'llm_call'")
        cols = [c[0] for c in cur.description]
        [ev] = [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]
    finally:
        con.close()
    assert (ev["input_tokens"], ev["output_tokens"]) == (0, 1)
    assert ev["status"] == "usage_invalid" and ev["unpriced"]
    assert not (env.gw.cfg.ledger / "wal" / "rejected.jsonl").exists()
