"""``Usage.repair``: whatever a provider reports, the repaired counts obey the ledger's rules
(the event validates), no count is lowered unless it was beyond belief, and sound usage is left
alone with nothing reported."""

from __future__ import annotations

import datetime as dt

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from tailguard.events.schema import LlmCall
from tailguard.gateway.usage import MAX_CALL_TOKENS, Usage

counts = st.one_of(
    st.integers(0, 2_000),
    st.integers(0, 2**70),
    st.sampled_from([MAX_CALL_TOKENS, MAX_CALL_TOKENS + 1, 2**63, 2**64]),
)


@given(counts, counts, counts, counts, counts)
def test_repaired_usage_is_a_valid_event(i: int, o: int, cr: int, cw: int, r: int) -> None:
    before = Usage(i, o, cr, cw, r, seen=True)
    u = Usage(i, o, cr, cw, r, seen=True)
    problems = u.repair()
    ev = {
        "event_id": "e",
        "kind": "llm_call",
        "ts": dt.datetime(2026, 1, 1, tzinfo=dt.UTC).isoformat(),
        "customer_id": "c",
        "model": "m",
        **u.as_event(),
    }
    msgspec.json.Decoder(LlmCall).decode(msgspec.json.encode(ev))  # raises if a rule breaks
    for f in (
        "input_tokens",
        "output_tokens",
        "cache_read_tokens",
        "cache_write_tokens",
        "reasoning_tokens",
    ):
        old, new = getattr(before, f), getattr(u, f)
        # a believable count is never lowered; one beyond belief is dropped, then only raised
        # again to include its believable parts (input: two cache counts, each believable)
        assert new >= old if old <= MAX_CALL_TOKENS else new <= 2 * MAX_CALL_TOKENS
    sound = max(i, o, cr, cw, r) <= MAX_CALL_TOKENS and cr + cw <= i and r <= o
    assert (problems == []) == sound
    if sound:
        assert u == before
