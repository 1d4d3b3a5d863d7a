"""OTLP in (``collect``'s receiver, ``ingest --format otlp``) refuses what the event readers
refuse (one rule for every way in, issue 16): a span that starts outside the accepted time
window is a rejected span, named; a JSON object that gives a key twice is a malformed request
(400) or a rejected line (``FILE:LINE``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.cli import run
from tailguard.otel.otlp import _repeated_key
from tailguard.otel.receiver import CollectApp
from tests.gateway.conftest import ServerThread
from tests.otel.otlp_builders import CHILD, CHILD2, ROOT, TRACE, line, request, span
from tests.sdk.conftest import ledger_rows

CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 3,
    "gen_ai.usage.output_tokens": 1,
}
JSON = {"content-type": "application/json"}


def _at(s: dict[str, Any], start_ns: str) -> dict[str, Any]:
    """``s`` starting (and ending) at ``start_ns`` nanoseconds since the epoch."""
    return {**s, "startTimeUnixNano": start_ns, "endTimeUnixNano": start_ns}


@pytest.fixture
def collect(tmp_path: Path) -> Iterator[tuple[str, CollectApp]]:
    app = CollectApp(tmp_path / "ledger")
    srv = ServerThread(app).__enter__()
    yield srv.url, app
    srv.__exit__()


def test_receiver_refuses_spans_outside_the_window(
    tmp_path: Path, collect: tuple[str, CollectApp]
) -> None:
    """Four call spans under one attributed root: one in 2026 (T0), one at the Unix epoch (a
    zero start: a broken exporter), one at 2^64 - 1 ns (year 2554) and one at 10^25 ns (past
    year 9999: no timestamp at all). The default window [2000-01-01, 2100-01-01) takes only
    the first; the other three are rejected spans, and the ledger holds one call."""
    url, app = collect
    body = json.dumps(
        request(
            [
                span(TRACE, ROOT, None, "root", {"tailguard.customer_id": "acme"}),
                span(TRACE, CHILD, ROOT, "chat ok", CHAT),
                _at(span(TRACE, CHILD2, ROOT, "chat epoch", CHAT), "0"),
                _at(span(TRACE, "00000000000000a1", ROOT, "chat 2554", CHAT), str(2**64 - 1)),
                _at(span(TRACE, "00000000000000a2", ROOT, "chat far", CHAT), str(10**25)),
            ]
        )
    )
    r = httpx.post(url + "/v1/traces", content=body, headers=JSON)
    assert r.status_code == 200
    ps = r.json()["partialSuccess"]
    assert ps["rejectedSpans"] == 3
    assert "chat epoch" in ps["errorMessage"]
    assert "outside the accepted time window [2000-01-01, 2100-01-01)" in ps["errorMessage"]
    app.wal.flush()
    rows = ledger_rows(tmp_path / "ledger", "llm_call")
    assert [(r["customer_id"], r["input_tokens"]) for r in rows] == [("acme", 3)]


def test_receiver_refuses_a_key_given_twice(collect: tuple[str, CollectApp]) -> None:
    """``startTimeUnixNano`` twice in one span: which start is meant? 400, with the key."""
    url, _app = collect
    s = json.dumps(span(TRACE, CHILD, ROOT, "chat", CHAT))
    twice = s[:-1] + ', "startTimeUnixNano": "0"}'
    body = json.dumps(request([])).replace('"spans": []', f'"spans": [{twice}]')
    r = httpx.post(url + "/v1/traces", content=body, headers=JSON)
    assert r.status_code == 400
    assert "startTimeUnixNano: key given twice in one object" in r.json()["message"]
    # a '":' inside a string value is not a key: the request is read as usual
    odd = {**CHAT, "gen_ai.request.model": 'gpt-4o":'}
    fine = json.dumps(
        request(
            [
                span(TRACE, ROOT, None, "root", {"tailguard.customer_id": "acme"}),
                span(TRACE, CHILD, ROOT, "chat", odd),
            ]
        )
    )
    assert httpx.post(url + "/v1/traces", content=fine, headers=JSON).status_code == 200
    # objects nested past the parser's depth: a malformed request too (was a 500)
    deep = httpx.post(url + "/v1/traces", content=b"[" * 5000 + b"]" * 5000, headers=JSON)
    assert deep.status_code == 400 and "nested too deeply" in deep.json()["message"]


def test_file_ingest_names_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Line 1: a key twice (rejected line); line 2: a call span at the epoch (rejected span);
    line 3: a good call; line 4: the root naming the customer."""
    root = span(TRACE, ROOT, None, "root", {"tailguard.customer_id": "acme"}, dur_ms=900)
    twice = json.dumps(request([])).replace('"resourceSpans"', '"x": 1, "x"', 1)
    f = tmp_path / "traces.jsonl"
    f.write_text(
        twice
        + "\n"
        + line([_at(span(TRACE, CHILD2, ROOT, "chat epoch", CHAT), "0")])
        + line([span(TRACE, CHILD, ROOT, "chat ok", CHAT)])
        + line([root])
    )
    led = tmp_path / "L"
    assert run(["ingest", str(f), "--format", "otlp", "--ledger", str(led)]) == 1
    err = capsys.readouterr().err
    assert f"{f}:1: x: key given twice in one object" in err
    assert f"{f}:2: span 'chat epoch'" in err and "outside the accepted time window" in err
    # the library says "a rejects file"; only the command line names its flag (issue 15 item 6)
    assert "2 OTLP line(s) or span(s) rejected" in err and ": pass --rejects FILE" in err
    assert ledger_rows(led) == []
    rej = tmp_path / "rej.jsonl"
    argv = ["ingest", str(f), "--format", "otlp", "--ledger", str(led), "--rejects", str(rej)]
    assert run(argv) == 0
    assert len(rej.read_text().splitlines()) == 2
    assert [r["input_tokens"] for r in ledger_rows(led)] == [3]


_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=8)
#: JSON values whose strings may hold the key mark '":' (the exact path must clear them)
_VALUES = st.recursive(
    _SCALARS | st.sampled_from(['":', 'a":b', '\\":']),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _VALUES, min_size=1, max_size=5))
def test_a_repeated_key_is_found_and_only_then(obj: dict[str, Any]) -> None:
    """Any JSON object as ``json.dumps`` writes it (no key twice anywhere) passes; the same
    text with its first key given again at the top level is refused, naming that key."""
    raw = json.dumps(obj).encode()
    assert _repeated_key(raw, msgspec.json.decode(raw)) is None
    first = next(iter(obj))
    twice = b"{" + json.dumps(first).encode() + b": 0, " + raw[1:]
    assert _repeated_key(twice, msgspec.json.decode(twice)) == first
