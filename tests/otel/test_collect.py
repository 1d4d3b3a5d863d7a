"""``tailguard collect``: a real instrumentation end to end, the OTLP answers, bad input."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tailguard.otel.receiver import CollectApp
from tests.gateway.conftest import ServerThread
from tests.otel.otlp_builders import CHILD, ROOT, TRACE, request, span
from tests.sdk.conftest import Mock, ledger_rows

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 3,
    "gen_ai.usage.output_tokens": 1,
}


@pytest.fixture
def collect(tmp_path: Path) -> Iterator[tuple[str, CollectApp]]:
    app = CollectApp(tmp_path / "ledger")
    srv = ServerThread(app).__enter__()
    yield srv.url, app
    srv.__exit__()


def test_openai_v2_instrumentation_end_to_end(
    mock: Mock, tmp_path: Path, collect: tuple[str, CollectApp]
) -> None:
    """opentelemetry-sdk + the OTLP/HTTP protobuf exporter + opentelemetry-instrumentation-
    openai-v2 around the official openai SDK calling the mock provider; the customer is set
    on a parent span only. The ledger holds each call once, with that customer and the tokens
    the client saw."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    url, _app = collect
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=url + "/v1/traces")))
    tracer = provider.get_tracer("app")
    inst = OpenAIInstrumentor()
    inst.instrument(tracer_provider=provider)
    try:
        c = openai.OpenAI(base_url=mock.url + "/v1", api_key="k", max_retries=0)
        seen = []
        for cust, words in (("acme", "one two three"), ("beta", "a b c d e f g")):
            with tracer.start_as_current_span("handle request") as parent:
                parent.set_attribute("tailguard.customer_id", cust)
                r = c.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": words}],
                    max_tokens=4,
                )
                seen.append((cust, r.usage.prompt_tokens, r.usage.completion_tokens))
    finally:
        inst.uninstrument()
        provider.shutdown()
    _app.wal.flush()
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    got = sorted((r["customer_id"], r["input_tokens"], r["output_tokens"]) for r in rows)
    # by the mock's rule: input = words, output = min(max_tokens, 16)
    assert got == sorted(seen) == [("acme", 3, 4), ("beta", 7, 4)]
    assert {r["model"] for r in rows} == {"gpt-4o-mini"}


def test_json_gzip_partial_success_and_errors(
    tmp_path: Path, collect: tuple[str, CollectApp]
) -> None:
    url, app = collect
    no_tokens = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    body = json.dumps(
        request(
            [
                span(TRACE, ROOT, None, "root", {"tailguard.customer_id": "acme"}),
                span(TRACE, CHILD, ROOT, "chat ok", CHAT),
                span(TRACE, "00000000000000aa", ROOT, "chat bad", no_tokens),
            ]
        )
    ).encode()
    r = httpx.post(
        url + "/v1/traces",
        content=gzip.compress(body),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 200
    ps = r.json()["partialSuccess"]
    assert ps["rejectedSpans"] == 1 and "no token counts" in ps["errorMessage"]
    # malformed: 400 with the reason, in the request's encoding
    bad = httpx.post(url + "/v1/traces", content=b"{", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and "not JSON" in bad.json()["message"]
    pb = httpx.post(
        url + "/v1/traces", content=b"\xff\xff", headers={"content-type": "application/x-protobuf"}
    )
    assert pb.status_code == 400 and b"not an ExportTraceServiceRequest" in pb.content
    other = httpx.post(url + "/v1/traces", content=b"x", headers={"content-type": "text/plain"})
    assert other.status_code == 415
    app.wal.flush()
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    assert [(r["customer_id"], r["input_tokens"]) for r in rows] == [("acme", 3)]
    stats = httpx.get(url + "/stats").json()
    assert (stats["spans"], stats["events"], stats["rejected"], stats["bad_requests"]) == (
        3,
        1,
        1,
        2,
    )
    assert (stats["held"], stats["unattributed"]) == (0, 0)
