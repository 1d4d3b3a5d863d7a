"""``tailguard ingest FILE --format otlp``: OTLP/JSON files (one ``ExportTraceServiceRequest``
per line, as the OpenTelemetry Collector's file exporter writes them) into the ledger.

The whole input is read before anything is settled, so every call span meets its ancestors
whatever the order of the lines (a file needs no holding time). Then, like every ingest: a bad
line or a call span that cannot become an event (no tokens, no model, a value the event schema
refuses) is a reject named ``FILE:LINE: span NAME (trace/span): reason``; without ``--rejects``
one reject refuses the whole input and the ledger is untouched. Events are idempotent by
``otel-<trace>-<span>``: ingesting the same file twice adds nothing.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tailguard.errors import InputError
from tailguard.otel.attribution import Resolver
from tailguard.otel.config import OtelConfig
from tailguard.otel.mapping import Rejected, check, event_of, wanted_attributes
from tailguard.otel.otlp import OtlpError, Span, spans_from_json

_enc = msgspec.json.Encoder(decimal_format="number")


@dataclass
class OtlpIngestResult:
    """What an OTLP ingest did."""

    lines: int = 0
    spans: int = 0
    calls: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    unattributed: int = 0
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "lines": self.lines,
            "spans": self.spans,
            "calls": self.calls,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "unattributed": self.unattributed,
        }


def validate(ev: dict[str, Any]) -> str | None:
    """None when ``ev`` is a valid ledger event, else the reason (the full schema check, a
    JSON round trip: tests use it to show ``check`` agrees)."""
    from tailguard.events.schema import Event

    try:
        msgspec.json.decode(_enc.encode(ev), type=Event)
    except (msgspec.ValidationError, ValueError) as exc:
        return str(exc)
    return None


def _unix_ns(t: dt.datetime) -> int:
    """``t`` in nanoseconds since the Unix epoch (exact: integer microseconds times 1,000)."""
    return (t - _EPOCH) // dt.timedelta(microseconds=1) * 1000


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def convert(
    settled: list[tuple[Span, str, dict[str, str | None]]], cfg: OtelConfig
) -> tuple[list[dict[str, Any]], list[tuple[Span, str]]]:
    """Events of settled call spans, and the spans refused (with the reason).

    A span that starts outside the accepted time window (``ts_window``: the ingest's rule,
    ``TAILGUARD_TS_WINDOW``) is refused here, by name, like any other bad span: the ledger
    would refuse its event later, after the receiver had answered that it was taken (and a
    start in nanoseconds past year 9999 has no timestamp at all)."""
    from tailguard.events.batch import ts_window

    win = ts_window()
    lo, hi = _unix_ns(win.start), _unix_ns(win.end)
    events: list[dict[str, Any]] = []
    bad: list[tuple[Span, str]] = []
    for span, kind, who in settled:
        if not lo <= span.start_ns < hi:
            why = f"span {span.name!r} ({span.trace_id}/{span.span_id}): ts: {win.reason()}"
            bad.append((span, why))
            continue
        try:
            ev = event_of(span, kind, who, cfg)
        except Rejected as exc:
            bad.append((span, str(exc)))
            continue
        why = check(ev)
        if why is not None:
            bad.append((span, f"span {span.name!r} ({span.trace_id}/{span.span_id}): {why}"))
        else:
            events.append(ev)
    return events, bad


def ingest_otlp(
    paths: list[str | os.PathLike[str]],
    ledger: str | os.PathLike[str],
    *,
    prices: Any = None,
    cfg: OtelConfig | None = None,
    rejects_path: str | os.PathLike[str] | None = None,
) -> OtlpIngestResult:
    """Read OTLP/JSON files, attribute, map and append to ``ledger`` (see the module doc)."""
    from tailguard.ledger.url import open_ledger

    cfg = cfg or OtelConfig()
    res = OtlpIngestResult()
    resolver = Resolver(cfg)
    keep = wanted_attributes(cfg)
    where: dict[tuple[str, str], str] = {}
    settled: list[tuple[Span, str, dict[str, str | None]]] = []
    for p in paths:
        with open(p, "rb") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                res.lines += 1
                try:
                    spans = spans_from_json(line, keep)
                except OtlpError as exc:
                    res.problems.append(f"{p}:{n}: {exc}")
                    continue
                res.spans += len(spans)
                for s in spans:
                    where[(s.trace_id, s.span_id)] = f"{p}:{n}"
                settled.extend(resolver.add(spans, now=0.0))
    settled.extend(resolver.drain())
    res.calls = len(settled)
    res.unattributed = resolver.counts["unattributed"]
    events, bad = convert(settled, cfg)
    res.problems += [f"{where[(s.trace_id, s.span_id)]}: {why}" for s, why in bad]
    res.rejected = len(res.problems)
    if res.problems:
        if rejects_path is None:
            raise InputError(
                f"{len(res.problems)} OTLP line(s) or span(s) rejected; nothing was ingested "
                "(give a rejects file to set them aside and ingest the rest)",
                res.problems,
            )
        with open(rejects_path, "wb") as out:
            out.write(b"".join(_enc.encode({"error": m}) + b"\n" for m in res.problems))
    if events:
        led = open_ledger(ledger)
        for i in range(0, len(events), 100_000):
            c = led.append(events[i : i + 100_000], prices=prices)
            res.accepted += c.accepted
            res.duplicates += c.duplicates
    return res
