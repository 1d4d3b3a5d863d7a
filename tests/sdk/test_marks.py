"""Retries, errors, broken and cancelled streams are recorded and marked, never dropped; a
successful answer without usage is marked, not priced as zero tokens."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import anthropic
import httpx2
import openai
import pytest

from tailguard.sdk import Tailguard
from tailguard.sdk.client import Tailguard as Handle
from tests.sdk.conftest import ListSink, Mock, ledger_rows

MSG = [{"role": "user", "content": "a b c"}]


@pytest.fixture
def cap() -> Handle:
    return Handle(ListSink(), default_customer="dflt")


def _events(h: Handle) -> list[dict[str, object]]:
    h.flush()
    sink = h.recorder.sink
    assert isinstance(sink, ListSink)
    return [e for e in sink.events if e["kind"] == "llm_call"]


def test_retries_each_attempt_recorded(mock: Mock, tg: Tailguard, tmp_path: Path) -> None:
    c = tg.instrument(openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=2))
    with tg.task(customer="acme"), pytest.raises(openai.InternalServerError):
        c.with_options(timeout=5).chat.completions.create(model="gpt-error-500", messages=MSG)
    tg.flush()
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    # the SDK tried 1 + max_retries = 3 times; each attempt is one row, numbered
    assert sorted(r["attempt"] for r in rows) == [1, 2, 3]
    assert {r["status"] for r in rows} == {"error"}
    assert {(r["input_tokens"], r["output_tokens"]) for r in rows} == {(0, 0)}


def test_http_error_marked(mock: Mock, cap: Handle) -> None:
    a = cap.instrument(anthropic.Anthropic(base_url=mock.url, api_key="k", max_retries=0))
    with pytest.raises(anthropic.BadRequestError):
        a.messages.create(model="claude-error-400", max_tokens=3, messages=MSG)
    (ev,) = _events(cap)
    assert (ev["status"], ev["error"], ev["http_status"]) == ("error", "http_400", 400)
    assert ev["customer_id"] == "dflt"  # outside any task: the default customer


def test_transport_failure_marked(cap: Handle) -> None:
    c = cap.instrument(openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0))
    with pytest.raises(openai.APIConnectionError):
        c.chat.completions.create(model="gpt-4o", messages=MSG)
    (ev,) = _events(cap)
    assert ev["status"] == "error" and ev["error"] == "ConnectError"


def test_cancelled_stream_marked(mock: Mock, cap: Handle) -> None:
    c = cap.instrument(openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0))
    s = c.chat.completions.create(model="gpt-slow", messages=MSG, max_tokens=8, stream=True)
    for i, _ in enumerate(s):
        if i == 2:
            break
    s.close()
    a = cap.instrument(anthropic.Anthropic(base_url=mock.url, api_key="k", max_retries=0))
    with a.messages.stream(model="claude-slow", max_tokens=8, messages=MSG) as st:
        next(iter(st.text_stream))
    evs = _events(cap)
    assert [(e["status"], e["error"]) for e in evs] == [("error", "stream_cancelled")] * 2
    # Anthropic says the input at the start of the stream: kept; the output is not known
    assert (evs[1]["input_tokens"], evs[1]["output_tokens"]) == (3, 1)


def test_broken_stream_marked(mock: Mock, cap: Handle) -> None:
    c = cap.instrument(openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0))
    with pytest.raises(openai.APIError):
        for _ in c.chat.completions.create(
            model="gpt-break", messages=MSG, max_tokens=8, stream=True
        ):
            pass
    (ev,) = _events(cap)
    assert (ev["status"], ev["error"]) == ("error", "stream_broken")


def _chat_body(prompt: int, completion: int, pad: int = 0) -> bytes:
    return json.dumps(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "x" * pad},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }
    ).encode()


@pytest.mark.parametrize("pad", [0, 200_000])  # small: parsed on the flusher; big: at the end
def test_gzip_body_and_big_body(cap: Handle, pad: int) -> None:
    """A provider answering gzip (the real API does): the tap reads the raw, compressed bytes."""

    def provider(request: httpx2.Request) -> httpx2.Response:
        body = gzip.compress(_chat_body(1234, 56, pad))
        return httpx2.Response(
            200,
            content=body,
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )

    http = httpx2.Client(transport=httpx2.MockTransport(provider))
    c = cap.instrument(openai.OpenAI(api_key="k", http_client=http, max_retries=0))
    r = c.chat.completions.create(model="gpt-4o", messages=MSG)
    assert len(r.choices[0].message.content or "") == pad
    (ev,) = _events(cap)
    assert (ev["input_tokens"], ev["output_tokens"], ev["status"]) == (1234, 56, "ok")


def test_answer_without_usage_is_marked(cap: Handle) -> None:
    def provider(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(_chat_body(1, 1))
        del body["usage"]
        return httpx2.Response(200, json=body)

    http = httpx2.Client(transport=httpx2.MockTransport(provider))
    c = cap.instrument(openai.OpenAI(api_key="k", http_client=http, max_retries=0))
    c.chat.completions.create(model="gpt-4o", messages=MSG)
    (ev,) = _events(cap)
    # as the gateway does: flagged, left unpriced by the ledger, never an `ok` call of 0 tokens
    assert (ev["status"], ev["error"]) == ("usage_invalid", "no usage in the response")


def test_other_routes_pass_unrecorded(cap: Handle, mock: Mock) -> None:
    c = cap.instrument(openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0))
    assert [m.id for m in c.models.list()][:1] == ["gpt-4o"]
    assert _events(cap) == []


def test_usage_breaking_the_rules_is_repaired_and_flagged(tmp_path: Path) -> None:
    """cached_tokens (10) above prompt_tokens (5) cannot be: repaired and flagged
    usage_invalid, so the ledger leaves the call unpriced instead of pricing a wrong count."""

    def provider(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(_chat_body(5, 2))
        body["usage"]["prompt_tokens_details"] = {"cached_tokens": 10}
        return httpx2.Response(200, json=body)

    from tailguard.sdk import connect

    tg = connect(ledger=tmp_path / "L")
    http = httpx2.Client(transport=httpx2.MockTransport(provider))
    c = tg.instrument(openai.OpenAI(api_key="k", http_client=http, max_retries=0))
    c.chat.completions.create(model="gpt-4o", messages=MSG)
    tg.close()
    (row,) = ledger_rows(tmp_path / "L", "llm_call")
    assert row["status"] == "usage_invalid"
    assert row["cost_usd"] is None and row["unpriced"]
