"""The customer from the span, its ancestors, the resource; a span waits for its ancestors a
bounded time; past it, the explicit unattributed customer, counted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.otel.attribution import Resolver
from tailguard.otel.config import OtelConfig
from tailguard.otel.otlp import spans_from_json
from tailguard.sdk.scope import UNATTRIBUTED
from tests.otel.otlp_builders import CHILD, CHILD2, ROOT, TRACE, request, span

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 3,
    "gen_ai.usage.output_tokens": 1,
}


def _spans(ss: list[dict[str, object]], resource: dict[str, object] | None = None) -> list:  # type: ignore[type-arg]
    return spans_from_json(request(ss, resource))  # type: ignore[arg-type]


def test_child_waits_for_its_parent_across_batches() -> None:
    r = Resolver(OtelConfig())
    # the LLM span ends first (grandchild), then a middle span without customer, then the root
    assert r.add(_spans([span(TRACE, CHILD2, CHILD, "chat", CHAT)]), now=0) == []
    assert r.add(_spans([span(TRACE, CHILD, ROOT, "agent", {})]), now=1) == []
    assert r.held == 1
    root = {"tailguard.customer_id": "acme", "enduser.id": "u-9", "session.id": "s-1"}
    (got,) = r.add(_spans([span(TRACE, ROOT, None, "request", root)]), now=2)
    assert got[2] == {"customer_id": "acme", "user_id": "u-9", "session_id": "s-1"}
    assert r.held == 0


def test_nearest_wins_then_resource() -> None:
    r = Resolver(OtelConfig())
    ss = _spans(
        [
            span(
                TRACE,
                ROOT,
                None,
                "root",
                {"tailguard.customer_id": "outer", "tailguard.feature": "f1"},
            ),
            span(TRACE, CHILD, ROOT, "mid", {"tailguard.customer_id": "inner"}),
            span(TRACE, CHILD2, CHILD, "chat", CHAT),
        ],
        resource={"tailguard.customer_id": "res", "tailguard.workload": "rag"},
    )
    (got,) = r.add(ss, now=0)
    # customer: the nearest ancestor's; the walk stops there, so feature comes from the resource
    # only if no span up to the customer had it: here f1 is above the stop, so not taken
    assert got[2] == {"customer_id": "inner", "workload": "rag"}


def test_root_without_customer_uses_resource_at_once() -> None:
    r = Resolver(OtelConfig())
    (got,) = r.add(
        _spans([span(TRACE, ROOT, None, "chat", CHAT)], {"tailguard.customer_id": "svc-cust"}),
        now=0,
    )
    assert got[2]["customer_id"] == "svc-cust"


def test_expiry_gives_unattributed_and_counts() -> None:
    r = Resolver(OtelConfig(hold_s=30))
    assert r.add(_spans([span(TRACE, CHILD, ROOT, "chat", CHAT)]), now=100) == []
    assert r.expire(now=129.9) == []
    (got,) = r.expire(now=130.0)
    assert got[2] == {"customer_id": UNATTRIBUTED}
    assert r.counts["unattributed"] == 1 and r.counts["expired"] == 1


def test_held_spans_are_bounded() -> None:
    r = Resolver(OtelConfig(max_held=3))
    out = []
    for i in range(5):
        out += r.add(_spans([span(TRACE, f"{i + 1:016x}", ROOT, "chat", CHAT)]), now=i)
    assert r.held == 3 and len(out) == 2 and r.counts["settled_early"] == 2


@settings(max_examples=60, deadline=None)
@given(st.permutations(range(4)), st.integers(0, 3))
def test_any_arrival_order_same_customer(order: list[int], owner: int) -> None:
    """A chain root > a > b > chat with the customer on one of them: whatever order the spans
    arrive in, the chat span gets the customer of its nearest ancestor that has one (here the
    only one) once everything arrived."""
    ids = ["0000000000000001", "0000000000000002", "0000000000000003", "0000000000000004"]
    parents = [None, ids[0], ids[1], ids[2]]
    built = []
    for i in range(4):
        a: dict[str, object] = dict(CHAT) if i == 3 else {}
        if i == owner:
            a["tailguard.customer_id"] = "acme"
        built.append(span(TRACE, ids[i], parents[i], f"s{i}", a))
    r = Resolver(OtelConfig())
    out = []
    for n, i in enumerate(order):
        out += r.add(_spans([built[i]]), now=n)
    out += r.drain()
    assert [w["customer_id"] for _, _, w in out] == ["acme"]
