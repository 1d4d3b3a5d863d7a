"""Helpers shared by the events tests: a hypothesis strategy for valid events of every kind."""

from __future__ import annotations

import datetime as dt

from hypothesis import strategies as st

ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
small = st.integers(0, 2**40)
money = st.one_of(
    st.none(),
    st.decimals(0, 10**6, places=4, allow_nan=False).map(lambda d: float(d)),
    st.decimals(0, 1000, places=9, allow_nan=False).map(str),
    st.integers(0, 10**6),
)
# inside the default time window [2000-01-01, 2100-01-01): valid events only
ts = st.datetimes(
    min_value=dt.datetime(2000, 1, 1),
    max_value=dt.datetime(2099, 12, 31, 23, 59, 59),
    timezones=st.just(dt.UTC),
).map(
    lambda d: (
        d.strftime("%Y-%m-%dT%H:%M:%S") + (f".{d.microsecond:06d}" if d.microsecond else "") + "Z"
    )
)


@st.composite
def event(draw: st.DrawFn, i: int = 0) -> dict:
    """One valid event of any kind, as a JSON object: nulls, absent optional fields, a field of
    another kind, big ints and money as numbers or strings (both readers must accept it)."""
    kind = draw(
        st.sampled_from(
            ["llm_call", "tool_call", "retrieval", "escalation", "task_outcome", "guard"]
        )
    )
    e: dict = {"event_id": draw(ids), "kind": kind, "ts": draw(ts), "customer_id": draw(ids)}
    for opt in ("user_id", "feature", "task_id", "session_id"):
        if draw(st.booleans()):
            e[opt] = draw(st.one_of(st.none(), ids))
    if draw(st.booleans()):
        e["workload"] = draw(st.sampled_from(["chat", "agent", "rag", "other", None]))
    if kind == "llm_call":
        inp = draw(small)
        out = draw(small)
        cr = draw(st.integers(0, inp))
        e |= {
            "model": draw(ids),
            "input_tokens": inp,
            "output_tokens": out,
            "cache_read_tokens": draw(st.sampled_from([cr, None])),
            "cache_write_tokens": draw(st.integers(0, inp - cr)),
            "reasoning_tokens": draw(st.integers(0, out)),
            "attempt": draw(st.one_of(st.none(), st.integers(1, 9))),
            "status": draw(st.sampled_from(["ok", "error", None])),
            "provider": draw(st.one_of(st.none(), ids)),
            "latency_ms": draw(st.one_of(st.none(), st.integers(0, 10**6), st.floats(0, 1e6))),
        }
    elif kind == "tool_call":
        e |= {"tool": draw(ids), "tool_kind": draw(st.sampled_from(["read", "write"]))}
    elif kind == "retrieval":
        e |= {"queries": draw(st.one_of(st.none(), small)), "reranks": draw(small)}
    elif kind == "escalation":
        e |= {"minutes": draw(st.floats(0, 1e4))}
    elif kind == "task_outcome":
        e |= {
            "outcome": draw(
                st.sampled_from(
                    ["accepted", "rejected", "abandoned", "timed_out", "tool_error", "escalated"]
                )
            )
        }
    else:
        e |= {
            "action": draw(st.sampled_from(["degrade", "deny", "kill", "overage"])),
            "rule": draw(ids),
            "amount_usd": draw(money),
        }
    if kind in ("llm_call", "tool_call", "retrieval", "escalation"):
        e["cost_usd"] = draw(money)
    if draw(st.booleans()):  # a field of another kind: both readers ignore it
        e["outcome" if kind != "task_outcome" else "model"] = "accepted"
    return e
