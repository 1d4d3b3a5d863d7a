"""The gateway's input estimate cannot under-count (issue 16, F10), so a hard cap holds.

The probe's case: 100 concurrent calls of 2,000 one-letter words against a $0.01 hard cap settled
$0.01298 (+30%), because the estimate was body bytes / 4 and "a a a ..." is one token per two
bytes. Here the mock counts input tokens as the UTF-8 bytes of the texts (``tokenizer = "bytes"``):
the most a byte-level BPE tokenizer can make of them, i.e. the case at the stated bound
(docs/guard.md, "The gateway's input estimate"). Worked by hand:

- the prompt "a a ... a" (2,000 one-letter words; the first two letters vary per call so the
  mock's prompt cache never applies) is 3,999 bytes: 3,999 input tokens; ``max_tokens = 16``
  gives 16 output tokens; gpt-4o-mini lists $0.15 / $0.60 per million tokens, so one call
  costs 3,999 x 0.15e-6 + 16 x 0.6e-6 = $0.00060945;
- the body (the bound) is len(BODY) bytes, so one call reserves
  len(BODY) x 0.15e-6 + 16 x 0.6e-6. A call is refused only when the spend plus the open
  reservations plus its own passes the cap, so the cap ends used to within one reservation and
  the margins (reservation - cost) of the calls still open at that moment.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal

from tests.gateway.conftest import POLICY, Env


def body(i: int) -> bytes:
    prompt = " ".join([chr(97 + i // 26), chr(97 + i % 26)] + ["a"] * 1998)
    msg = [{"role": "user", "content": prompt}]
    obj = {"model": "gpt-4o-mini", "messages": msg, "max_tokens": 16}
    return json.dumps(obj, separators=(",", ":")).encode()


BODY = body(0)
CAP = Decimal("0.01")
PER_CALL = Decimal(3999) * Decimal("0.15e-6") + 16 * Decimal("0.6e-6")
RESERVED = Decimal(len(BODY)) * Decimal("0.15e-6") + 16 * Decimal("0.6e-6")


def test_hard_cap_holds_at_the_tokenizer_worst_case(make_env: Callable[..., Env]) -> None:
    assert Decimal("0.00060945") == PER_CALL
    env = make_env(policy=POLICY.format(graceful="false", limit=CAP))
    env.mock.tokenizer = "bytes"

    async def main() -> list[int]:
        async with env.http() as c:

            async def one(i: int) -> int:
                r = await c.post(
                    "/v1/chat/completions",
                    content=body(i),
                    headers={
                        "authorization": f"Bearer {env.key}",
                        "content-type": "application/json",
                    },
                )
                return r.status_code

            codes = await asyncio.gather(*(one(i) for i in range(100)))
        await env.close()
        return list(codes)

    codes = asyncio.run(main())
    ok = codes.count(200)
    assert codes.count(429) == 100 - ok
    calls = env.events()
    assert len(calls) == ok
    assert all(e["input_tokens"] == 3999 and e["output_tokens"] == 16 for e in calls)
    spent = sum((e["cost_usd"] for e in calls), Decimal(0))
    assert spent == ok * PER_CALL
    assert spent <= CAP  # bytes / 4 settled $0.01298 here
    # and the cap is used, not refused early
    assert spent >= CAP - RESERVED - ok * (RESERVED - PER_CALL)
