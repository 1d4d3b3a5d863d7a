"""Soft-threshold alerts POST once per scope per period to a tiny local HTTP server."""

from __future__ import annotations

from decimal import Decimal as D

from tailguard.guard import Request


def test_alert_posts_once_per_period_across_replicas(hook, make_guard, make_store, clock):
    url = f"http://127.0.0.1:{hook.server_port}/alert"
    tier = {"hard_limit_usd": 10, "soft_threshold": 0.5, "overage": "payg", "period": "day"}
    store = make_store()
    a = make_guard(tier, guard={"webhook_url": url}, store=store)
    b = make_guard(tier, guard={"webhook_url": url}, store=store)  # a second replica
    for i in range(8):  # 8 x $1 through alternating replicas; $5 (50%) is crossed at the 5th
        g = (a, b)[i % 2]
        g.settle(g.check(Request("acme", D("1"))).reservation, D("1"))
    clock.advance(86_400)  # the next day: a new period, a new alert
    for _ in range(5):
        a.settle(a.check(Request("acme", D("1"))).reservation, D("1"))
    a.alerter.close()
    b.alerter.close()
    got = hook.got  # type: ignore[attr-defined]
    assert [(x["customer_id"], x["period"], x["used"]) for x in got] == [
        ("acme", "day:2026-11-10", "5.000000"),
        ("acme", "day:2026-11-11", "5.000000"),
    ]
    assert got[0]["soft_limit"] == "5.000000" and got[0]["hard_limit"] == "10.000000"
    assert a.alerter.sent + b.alerter.sent == 2


def test_a_dead_webhook_never_fails_the_call(make_guard):
    g = make_guard(
        {"hard_limit_usd": 1, "overage": "payg"},
        guard={"webhook_url": "http://127.0.0.1:9/none", "webhook_timeout_s": 0.2},
    )
    d = g.check(Request("acme", D("0.90")))  # crosses 70%: an alert to nowhere
    assert d.allowed
    g.alerter.close()
    assert g.alerter.failed == 1
