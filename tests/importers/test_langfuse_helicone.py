"""``tailguard import langfuse`` and ``helicone``: records in each system's documented shape.

Langfuse: a page of the public observations API (``{"data": [...], "meta": {...}}``), whose
``usageDetails`` parts are disjoint (``input`` is the prompt minus its cache, ``output`` the
completion minus reasoning). Helicone: rows of its request export. Prices per million tokens:
gpt-4o $2.50 input, $1.25 cached, $10 output; gpt-4o-mini $0.15 / $0.60; claude-3-5-sonnet $3
input, $0.30 cache read, $3.75 cache write, $15 output.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tailguard.errors import InputError
from tailguard.importers import import_files
from tests.importers.helpers import rows, write_csv, write_jsonl

_GEN = {
    "type": "GENERATION",
    "traceId": "trace-1",
    "name": "answer",
    "level": "DEFAULT",
    "modelParameters": {"temperature": 0},
}


def _langfuse_page() -> dict[str, object]:
    return {
        "data": [
            _GEN
            | {
                "id": "obs-openai",
                "userId": "acme",
                "startTime": "2025-06-01T10:00:00.000Z",
                "endTime": "2025-06-01T10:00:01.200Z",
                "model": "gpt-4o",
                "usageDetails": {
                    "input": 700,
                    "input_cached_tokens": 300,
                    "output": 150,
                    "output_reasoning_tokens": 50,
                    "total": 1200,
                },
                "costDetails": {"input": 0.002125, "output": 0.002, "total": 0.004125},
            },
            _GEN
            | {
                "id": "obs-anthropic",
                "metadata": {"customer_id": "beta"},
                "startTime": "2025-06-01T11:00:00.000Z",
                "model": "claude-3-5-sonnet-20241022",
                "usageDetails": {
                    "input": 200,
                    "cache_read_input_tokens": 500,
                    "cache_creation_input_tokens": 300,
                    "output": 100,
                },
                "costDetails": {"input": 0.001875, "output": 0.0015},
                "level": "ERROR",
            },
            _GEN
            | {
                "id": "obs-v1",
                "tags": ["env:prod", "customer:gamma"],
                "startTime": "2025-06-02T09:00:00Z",
                "model": "gpt-4o-mini",
                "usage": {"input": 50, "output": 10, "total": 60, "unit": "TOKENS"},
                "calculatedTotalCost": 0.0000135,
            },
            {
                "id": "span-1",
                "type": "SPAN",
                "traceId": "trace-1",
                "startTime": "2025-06-01T10:00:00Z",
            },
        ],
        "meta": {"page": 1, "limit": 50, "totalItems": 4, "totalPages": 1},
    }


def test_langfuse_generations_in_the_ledgers_convention(tmp_path: Path) -> None:
    """obs-openai: input 700 + 300 cached = 1000 (cache read 300), output 150 + 50 reasoning
    = 200; price 700 x 2.50 + 300 x 1.25 + 200 x 10 = 4125 micro-$ = 0.004125; customer from
    userId. obs-anthropic: input 200 + 500 read + 300 written = 1000; 200 x 3 + 500 x 0.30 +
    300 x 3.75 + 100 x 15 = 3375 micro-$ = 0.003375, Langfuse's cost the sum of its parts
    0.001875 + 0.0015 = 0.003375; customer from metadata; level ERROR is an error. obs-v1
    (usage only): 50 x 0.15 + 10 x 0.60 = 13.5 micro-$; customer from its tag. The span is no
    model call: skipped."""
    src = tmp_path / "observations.json"
    src.write_text(json.dumps(_langfuse_page()))
    res = import_files("langfuse", [src], tmp_path / "L")
    assert (res.ingest.accepted, res.skipped) == (3, 1)
    got = rows(tmp_path / "L")
    a, b, c = got["langfuse:obs-openai"], got["langfuse:obs-anthropic"], got["langfuse:obs-v1"]
    assert (a["customer_id"], b["customer_id"], c["customer_id"]) == ("acme", "beta", "gamma")
    tokens = ("input_tokens", "cache_read_tokens", "output_tokens", "reasoning_tokens")
    assert tuple(a[k] for k in tokens) == (1000, 300, 200, 50)
    assert (b["input_tokens"], b["cache_read_tokens"], b["cache_write_tokens"]) == (1000, 500, 300)
    assert (a["cost_usd"], a["reported_cost_usd"]) == (Decimal("0.004125"),) * 2
    assert (b["cost_usd"], b["reported_cost_usd"]) == (Decimal("0.003375"),) * 2
    assert (c["cost_usd"], c["reported_cost_usd"]) == (Decimal("0.0000135"),) * 2
    assert (a["latency_ms"], b["status"]) == (1200.0, "error")


def _helicone_rows() -> list[dict[str, object]]:
    return [
        {
            "request_id": "5f1a7c3e-0000-4000-8000-000000000001",
            "request_created_at": "2025-06-01T12:00:00.000Z",
            "request_user_id": "user-7",
            "request_properties": {"customer_id": "acme"},
            "model": "gpt-4o",
            "provider": "OPENAI",
            "prompt_tokens": 1200,
            "completion_tokens": 300,
            "prompt_cache_read_tokens": 1000,
            "prompt_cache_write_tokens": 0,
            "cost": 0.00475,
            "delay_ms": 850,
            "response_status": 200,
        },
        {
            "request_id": "5f1a7c3e-0000-4000-8000-000000000002",
            "request_created_at": "2025-06-01T12:05:00.000Z",
            "request_user_id": "user-9",
            "request_properties": {},
            "model": "claude-3-5-sonnet-20241022",
            "provider": "ANTHROPIC",
            "prompt_tokens": 100,
            "completion_tokens": 20,
            "cost": 0.0006,
            "delay_ms": 2000,
            "response_status": 500,
        },
    ]


def test_helicone_requests_from_jsonl_and_csv_alike(tmp_path: Path) -> None:
    """Row 1: customer property "acme"; prompt 1200 of which 1000 cache reads: 200 x 2.50 +
    1000 x 1.25 + 300 x 10 = 4750 micro-$ = 0.00475 (Helicone's cost the same). Row 2: no
    customer property, so the user id "user-9"; 100 x 3 + 20 x 15 = 600 micro-$; status 500 is
    an error. The CSV export (properties as JSON text) gives the same ledger rows."""
    recs = _helicone_rows()
    import_files("helicone", [write_jsonl(tmp_path / "requests.jsonl", recs)], tmp_path / "J")
    flat = [r | {"request_properties": json.dumps(r["request_properties"])} for r in recs]
    import_files("helicone", [write_csv(tmp_path / "requests.csv", flat)], tmp_path / "C")
    got = rows(tmp_path / "J")
    assert got == rows(tmp_path / "C")
    one = got["helicone:5f1a7c3e-0000-4000-8000-000000000001"]
    two = got["helicone:5f1a7c3e-0000-4000-8000-000000000002"]
    assert (one["customer_id"], one["user_id"], one["provider"]) == ("acme", "user-7", "openai")
    assert (one["input_tokens"], one["cache_read_tokens"]) == (1200, 1000)
    assert (one["cost_usd"], one["reported_cost_usd"]) == (Decimal("0.00475"),) * 2
    assert (two["customer_id"], two["status"], two["cost_usd"]) == (
        "user-9",
        "error",
        Decimal("0.0006"),
    )


def test_langfuse_pages_as_jsonl_name_the_line_of_a_bad_record(tmp_path: Path) -> None:
    """Two pages, one per line (as a paging script appends them). Line 2 holds a generation
    without a model and one with a timestamp lacking its zone: both named by line and field;
    without --rejects nothing is imported."""
    page1 = _langfuse_page()
    bad = [
        _GEN | {"id": "obs-x", "userId": "acme", "startTime": "2025-06-03T00:00:00Z"},
        _GEN | {"id": "obs-y", "userId": "acme", "startTime": "2025-06-03T00:00:00", "model": "m"},
    ]
    src = write_jsonl(tmp_path / "pages.jsonl", [page1, {"data": bad, "meta": {"page": 2}}])
    with pytest.raises(InputError) as err:
        import_files("langfuse", [src], tmp_path / "L")
    assert err.value.problems == [
        f"{src}:2: model: missing required field",
        f"{src}:2: startTime: timestamp without a timezone: '2025-06-03T00:00:00'",
    ]
    res = import_files("langfuse", [src], tmp_path / "L", rejects_path=tmp_path / "bad.jsonl")
    assert (res.ingest.accepted, res.ingest.rejected, res.skipped) == (3, 2, 1)
