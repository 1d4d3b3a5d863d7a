"""Soft-threshold alerts POST once per scope per period to a tiny local HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal as D
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest

from tailguard.guard import Request


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
    srv = HTTPServer(("127.0.0.1", 0), _Hook)
    srv.got = []  # type: ignore[attr-defined]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


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
