"""The SDK's gateway sink: events posted to a real gateway's ``POST /v1/events`` (gzip JSON
lines) land in the gateway's ledger; the ingest key writes any customer, a virtual key only
its own; the gateway's ``/v1/traces`` takes OTLP with the ingest key."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tailguard.gateway.app import Gateway
from tailguard.gateway.config import create_key
from tailguard.sdk import connect
from tests.gateway.conftest import INGEST_KEY, serve_ingest_gateway
from tests.otel.otlp_builders import CHILD, ROOT, TRACE, request, span
from tests.sdk.conftest import Mock, ledger_rows


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Gateway]]:
    yield from serve_ingest_gateway(tmp_path, monkeypatch)


def test_sdk_to_gateway(gateway: tuple[str, Gateway], mock: Mock, tmp_path: Path) -> None:
    url, gw = gateway
    tg = connect(endpoint=url, key=INGEST_KEY)
    c = tg.instrument(openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0))
    with tg.task(customer="acme", feature="support") as task:
        r = c.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "a b c d"}], max_tokens=2
        )
        task.tool("crm", kind="write")
        task.outcome("accepted")
    tg.flush()
    s = tg.stats()
    tg.close()
    assert (s["posted"], s["http_pending"], s["http_rejected"]) == (3, 0, 0)
    gw.wal.flush()
    rows = ledger_rows(gw.cfg.ledger)
    assert sorted(r["kind"] for r in rows) == ["llm_call", "task_outcome", "tool_call"]
    llm = next(r for r in rows if r["kind"] == "llm_call")
    assert (llm["customer_id"], llm["input_tokens"], llm["output_tokens"]) == (
        "acme",
        r.usage.prompt_tokens,
        r.usage.completion_tokens,
    )


def _post(url: str, key: str, lines: list[dict[str, object]]) -> httpx.Response:
    body = gzip.compress(b"".join(json.dumps(x).encode() + b"\n" for x in lines))
    return httpx.post(
        url + "/v1/events",
        content=body,
        headers={"authorization": f"Bearer {key}", "content-encoding": "gzip"},
    )


def _ev(i: int, customer: str) -> dict[str, object]:
    return {
        "event_id": f"e{i}",
        "kind": "task_outcome",
        "ts": "2026-01-01T00:00:00Z",
        "customer_id": customer,
        "outcome": "accepted",
    }


def test_keys_and_partial_rejects(gateway: tuple[str, Gateway]) -> None:
    url, gw = gateway
    vkey = create_key(gw.cfg.keys, "beta")
    gw.keyring.refresh()
    assert _post(url, "nope", [_ev(1, "beta")]).status_code == 401
    r = _post(url, vkey, [_ev(1, "beta"), _ev(2, "acme"), {"kind": "task_outcome"}])
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 1
    assert [x["line"] for x in body["rejected"]] == [2, 3]
    assert "only write events of customer 'beta'" in body["rejected"][0]["error"]
    assert _post(url, INGEST_KEY, [_ev(2, "acme"), _ev(1, "beta")]).json()["accepted"] == 2
    gw.wal.flush()
    rows = ledger_rows(gw.cfg.ledger)
    assert sorted((r["event_id"], r["customer_id"]) for r in rows) == [
        ("e1", "beta"),
        ("e2", "acme"),
    ]


def test_gateway_traces_route(gateway: tuple[str, Gateway]) -> None:
    url, gw = gateway
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.usage.input_tokens": 11,
        "gen_ai.usage.output_tokens": 3,
    }
    body = json.dumps(
        request(
            [
                span(TRACE, CHILD, ROOT, "chat", chat),
                span(TRACE, ROOT, None, "root", {"tailguard.customer_id": "gamma"}),
            ]
        )
    )
    h = {"content-type": "application/json"}
    assert httpx.post(url + "/v1/traces", content=body, headers=h).status_code == 401
    ok = httpx.post(
        url + "/v1/traces", content=body, headers=h | {"authorization": f"Bearer {INGEST_KEY}"}
    )
    assert ok.status_code == 200 and ok.json() == {}
    gw.wal.flush()
    (row,) = ledger_rows(gw.cfg.ledger)
    assert (row["customer_id"], row["input_tokens"]) == ("gamma", 11)
