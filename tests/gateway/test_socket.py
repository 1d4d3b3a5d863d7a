"""End to end over real loopback sockets: sync SDK clients -> uvicorn gateway -> uvicorn mock.

These exercise what the in-process transport cannot: streams delivered event by event, a
provider dropping a stream halfway, errors passing through a real HTTP hop.
"""

from __future__ import annotations

from collections.abc import Callable

import anthropic
import httpx
import httpx2
import openai
import pytest

from tests.gateway.conftest import SocketEnv

MSG = [{"role": "user", "content": "alpha beta gamma"}]


def test_streams_and_errors_over_sockets(socket_env: Callable[..., SocketEnv]) -> None:
    env = socket_env()
    o = openai.OpenAI(api_key=env.key, base_url=env.url + "/v1", max_retries=0)
    a = anthropic.Anthropic(api_key=env.key, base_url=env.url, max_retries=0)

    # OpenAI stream, events arriving one by one through the gateway
    chunks = list(
        o.chat.completions.create(model="o4-mini", messages=MSG, max_tokens=6, stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "w1 w2 w3 w4 w5 w6"
    assert all(c.choices for c in chunks)  # the injected usage chunk was withheld

    # Anthropic stream
    with a.messages.stream(model="claude-haiku-4-5", max_tokens=5, messages=MSG) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == "w1 w2 w3 w4 w5" and final.usage.output_tokens == 5

    # embeddings and the Responses API (non-streamed and streamed)
    emb = o.embeddings.create(model="text-embedding-3-small", input=["one two", "three"])
    assert emb.usage.prompt_tokens == 3
    r = o.responses.create(model="gpt-4o-mini", input="four five six seven", max_output_tokens=3)
    assert r.output_text == "w1 w2 w3" and r.usage.input_tokens == 4
    with o.responses.stream(model="gpt-4o-mini", input="eight nine", max_output_tokens=2) as rs:
        assert "".join(e.delta for e in rs if e.type == "response.output_text.delta") == "w1 w2"
        rfinal = rs.get_final_response()
    assert rfinal.output_text == "w1 w2" and rfinal.usage.output_tokens == 2
    assert [m.id for m in o.models.list()][:2] == ["gpt-4o", "gpt-4o-mini"]

    # upstream errors pass through unchanged, in the provider's shape
    with pytest.raises(openai.RateLimitError) as oe:
        o.chat.completions.create(model="gpt-error-429", messages=MSG)
    assert oe.value.body["message"] == "mock upstream error 429 for model gpt-error-429"
    assert oe.value.response.headers["x-mock-error"] == "429"
    with pytest.raises(anthropic.InternalServerError) as ae:
        a.messages.create(model="claude-error-500", max_tokens=4, messages=MSG)
    assert ae.value.body["error"]["message"] == "mock upstream error 500 for model claude-error-500"

    # a provider that does not answer in time: 504 in the provider's shape, recorded
    with pytest.raises(openai.InternalServerError) as te:
        o.chat.completions.create(model="gpt-hang", messages=MSG)
    assert te.value.status_code == 504 and te.value.code == "upstream_timeout"

    # a provider that drops the stream halfway: the client sees the break, the ledger the part
    with (
        pytest.raises(httpx2.RemoteProtocolError),  # this SDK is built on httpx2
        a.messages.stream(model="claude-break", max_tokens=8, messages=MSG) as s,
    ):
        list(s.text_stream)

    # a client that hangs up halfway through a stream: recorded with what was seen, marked
    with (
        httpx.Client(base_url=env.url) as hc,
        hc.stream(
            "POST",
            "/v1/chat/completions",
            headers={"Authorization": f"Bearer {env.key}"},
            json={"model": "gpt-slow", "messages": MSG, "stream": True},
        ) as resp,
    ):
        next(resp.iter_bytes())

    # no key / a bad key: 401 in each provider's shape
    bad_o = openai.OpenAI(api_key="tg-wrong", base_url=env.url + "/v1", max_retries=0)
    with bad_o, pytest.raises(openai.AuthenticationError) as no:
        bad_o.models.list()
    assert no.value.code == "invalid_api_key"
    bad_a = anthropic.Anthropic(api_key="nope", base_url=env.url, max_retries=0)
    with bad_a, pytest.raises(anthropic.AuthenticationError):
        bad_a.messages.create(model="claude-haiku-4-5", max_tokens=4, messages=MSG)
    o.close()
    a.close()

    # operations
    assert httpx.get(env.url + "/healthz").json() == {"status": "ok"}
    metrics = httpx.get(env.url + "/metrics").text
    assert 'tailguard_gateway_requests_total{endpoint="responses",code="2xx"} 2' in metrics
    assert (
        'tailguard_gateway_upstream_errors_total{provider="anthropic",kind="stream_broken"} 1'
        in (metrics)
    )
    assert "acme" not in metrics  # no per-customer labels

    env.close()
    from tests.gateway.conftest import Env

    evs = Env.events(env)  # type: ignore[arg-type]
    by_model = {e["model"]: e for e in evs}
    o4 = by_model["o4-mini"]  # 3 words in; 6 words out + 2 x 6 reasoning
    assert (o4["input_tokens"], o4["output_tokens"], o4["reasoning_tokens"]) == (3, 18, 12)
    assert by_model["text-embedding-3-small"]["input_tokens"] == 3
    responses = [
        (e["input_tokens"], e["output_tokens"]) for e in evs if e["model"] == "gpt-4o-mini"
    ]
    assert responses == [(4, 3), (2, 2)]  # non-streamed, then streamed (response.completed)
    err = by_model["gpt-error-429"]
    assert err["status"] == "error" and err["input_tokens"] == 0
    broken = by_model["claude-break"]  # message_start was seen: its input tokens are kept
    assert broken["status"] == "error" and broken["input_tokens"] == 3
    assert broken["unpriced"] and broken["cost_usd"] is None  # no price card: kept, flagged
    assert by_model["gpt-hang"]["status"] == "error"
    assert by_model["gpt-slow"]["status"] == "error"  # the client hung up
    assert len(evs) == 10  # one per upstream call, none for the 401s
