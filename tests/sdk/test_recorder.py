"""Recording never blocks and never raises into the application: a bounded queue, a flusher
thread, a counter of dropped events logged once. And the OpenAI stream tap is exact however
the network cuts the bytes."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.gateway.usage import SseSplitter, StreamUsage
from tailguard.sdk.client import Tailguard
from tailguard.sdk.instrument import CallRecord
from tailguard.sdk.recorder import Recorder
from tests.sdk.conftest import ListSink


class StuckSink(ListSink):
    """A sink that hangs (a gateway that stopped answering) until released; otherwise the
    in-memory ``ListSink`` (one no-op flush/close/stats for every test sink)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def send(self, events: list[dict[str, Any]]) -> None:
        self.release.wait(10)
        super().send(events)


class FailingSink(StuckSink):
    def send(self, events: list[dict[str, Any]]) -> None:
        raise OSError("disk full")


def test_full_queue_drops_counts_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    sink = StuckSink()
    h = Tailguard(sink, max_queue=50, flush_interval_s=0.01)
    with h.task(customer="acme") as t:
        t.tool("first", kind="read")
        # wait until the flusher took the first event and hangs in the sink
        for _ in range(500):
            if h.stats()["queued"] == 0:
                break
            threading.Event().wait(0.01)
        with caplog.at_level(logging.WARNING, logger="tailguard.sdk"):
            for i in range(80):  # 50 fit, 30 do not; none of these calls blocks
                t.tool(f"t{i}", kind="read")
    s = h.stats()
    assert (s["queued"], s["dropped"]) == (50, 30)
    assert sum("dropping events" in r.message for r in caplog.records) == 1
    sink.release.set()
    h.close()
    assert len(sink.events) == 51  # the first one and the 50 that fit
    assert h.stats()["dropped"] == 30


def test_a_failing_sink_never_raises_into_the_app() -> None:
    h = Tailguard(FailingSink(), flush_interval_s=0.01)
    with h.task(customer="acme") as t:
        t.outcome("accepted")
    h.flush()  # the sink's error is counted, not raised
    assert h.stats()["send_failed"] == 1


def test_queue_bounds_are_checked() -> None:
    with pytest.raises(ValueError):
        Recorder(StuckSink(), max_queue=0)


def _sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _stream(n: int, usage: dict[str, int]) -> tuple[bytes, bytes]:
    """An OpenAI chat stream with the usage chunk, and the same stream without it."""
    chunks = [
        _sse({"choices": [{"index": 0, "delta": {"content": f" w{i}"}}], "usage": None})
        for i in range(n)
    ]
    last = _sse({"choices": [], "usage": usage})
    done = b"data: [DONE]\n\n"
    return b"".join([*chunks, last, done]), b"".join([*chunks, done])


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(0, 30),
    prompt=st.integers(0, 10**6),
    completion=st.integers(0, 10**5),
    cuts=st.lists(st.integers(0, 4000), max_size=40),
)
def test_hidden_usage_chunk_any_cuts(n: int, prompt: int, completion: int, cuts: list[int]) -> None:
    """Wherever the network splits the stream, the caller sees exactly the stream without the
    usage chunk, and the record holds exactly the usage that chunk carried."""
    full, without = _stream(n, {"prompt_tokens": prompt, "completion_tokens": completion})
    rec = CallRecord(None, "openai", "chat", b"{}")
    rec.sse = rec.drop = True
    rec.splitter = SseSplitter()
    rec.stream_usage = StreamUsage("openai", drop_usage_chunk=True)
    points = sorted({min(c, len(full)) for c in cuts})
    pieces = [full[a:b] for a, b in zip([0, *points], [*points, len(full)], strict=True)]
    seen = b"".join(rec.take(p) for p in pieces) + rec.rest()
    rec.end()
    assert seen == without
    assert rec.usage is not None and rec.done
    assert (rec.usage.input_tokens, rec.usage.output_tokens) == (prompt, completion)
