"""Property: overlapping exports imported in any order, any number of times, never double count."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.importers import ImportMap, import_files
from tailguard.ledger import Ledger, ingest
from tests.importers.helpers import write_csv

_ROWS = st.lists(
    st.tuples(st.integers(0, 25), st.integers(0, 5000), st.integers(0, 500)),
    min_size=1,
    max_size=30,
)


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=_ROWS,
    slices=st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30), st.booleans()), max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_overlapping_exports_in_any_order_count_once(tmp_path_factory, rows, slices, order) -> None:
    """Each (id, prompt, completion) is one gpt-4o spend-log row; a repeated id is the same
    request (the first occurrence of an id decides its tokens, as in the source). Slices of
    the export, as CSV or JSON, are imported in a shuffled order plus the whole export: the
    ledger holds each request once and its cost is the sum over distinct requests of
    prompt x 2.50 + completion x 10 per million (computed here in Decimal)."""
    d = tmp_path_factory.mktemp("o")
    first: dict[int, tuple[int, int]] = {}
    for i, p, c in rows:
        first.setdefault(i, (p, c))
    recs = [
        {
            "request_id": f"r{i}",
            "startTime": "2025-06-01T00:00:00Z",
            "model": "gpt-4o",
            "custom_llm_provider": "openai",
            "end_user": f"cust{i % 3}",
            "prompt_tokens": first[i][0],
            "completion_tokens": first[i][1],
            "spend": "0.001",
        }
        for i, _, _ in rows
    ]
    files = []
    for k, (a, b, as_csv) in enumerate(slices):
        part = recs[min(a, b) : max(a, b)]
        if not part:
            continue
        if as_csv:
            files.append(write_csv(d / f"s{k}.csv", part))
        else:
            (d / f"s{k}.json").write_text(json.dumps(part))
            files.append(d / f"s{k}.json")
    (d / "all.json").write_text(json.dumps(recs))
    files.append(d / "all.json")
    order.shuffle(files)
    for f in files:
        import_files("litellm", [f], d / "L")
    want = sum(
        (Decimal(p) * Decimal("2.50") + Decimal(c) * 10 for p, c in first.values()), Decimal(0)
    ) / Decimal(1_000_000)
    con = Ledger(d / "L").connect()
    n, cost, reported = con.execute(
        "SELECT count(*), sum(cost_usd), sum(reported_cost_usd) FROM events"
    ).fetchone()
    assert (n, cost, reported) == (len(first), want, Decimal("0.001") * len(first))


def test_rows_the_gateway_recorded_are_excluded_by_a_rule(tmp_path: Path) -> None:
    """The ledger holds the gateway's record of req-2 (its own event id); LiteLLM's export has
    req-1 and req-2, the latter tagged ``via:tailguard``. With ``[exclude] "tag:via" =
    ["tailguard"]`` only req-1 is imported: two calls in all, 1000 + 1000 prompt tokens, not
    three."""
    gw = tmp_path / "gateway.jsonl"
    gw.write_text(
        json.dumps(
            {
                "event_id": "gw-7f3a",
                "kind": "llm_call",
                "ts": "2025-06-02T00:00:00Z",
                "customer_id": "acme",
                "provider": "openai",
                "model": "gpt-4o",
                "input_tokens": 1000,
                "output_tokens": 0,
            }
        )
        + "\n"
    )
    ingest([gw], d := tmp_path / "L")
    recs = [
        {
            "request_id": rid,
            "startTime": ts,
            "model": "gpt-4o",
            "custom_llm_provider": "openai",
            "end_user": "acme",
            "prompt_tokens": 1000,
            "completion_tokens": 0,
            "request_tags": tags,
        }
        for rid, ts, tags in [
            ("req-1", "2025-06-01T00:00:00Z", []),
            ("req-2", "2025-06-02T00:00:00Z", ["via:tailguard"]),
        ]
    ]
    (tmp_path / "spend.json").write_text(json.dumps(recs))
    (tmp_path / "map.toml").write_text('[exclude]\n"tag:via" = ["tailguard"]\n')
    res = import_files(
        "litellm", [tmp_path / "spend.json"], d, mapping=ImportMap.load(tmp_path / "map.toml")
    )
    assert (res.ingest.accepted, res.skipped) == (1, 1)
    con = Ledger(d).connect()
    assert con.execute("SELECT count(*), sum(input_tokens) FROM events").fetchone() == (2, 2000)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    calls=st.lists(st.tuples(st.booleans(), st.integers(1, 5000)), min_size=1, max_size=12),
    steps=st.lists(st.sampled_from(["gateway", "import", "ingest"]), min_size=1, max_size=6),
)
def test_gateway_import_and_ingest_in_any_order_count_once(tmp_path_factory, calls, steps) -> None:
    """Requests i: those through the gateway (flag true) are in the gateway's records (its own
    ids, ``gw-i``) and in LiteLLM's export tagged ``via:tailguard``; the others only in the
    export. Any sequence of gateway ingests, exclusion-ruled imports and re-ingests of the
    gateway's file, plus one of each at the end: each request is in the ledger once, and the
    prompt tokens add up to the sum over distinct requests."""
    d = tmp_path_factory.mktemp("g")
    gw = d / "gateway.jsonl"
    gw.write_text(
        "".join(
            json.dumps(
                {
                    "event_id": f"gw-{i}",
                    "kind": "llm_call",
                    "ts": "2025-06-02T00:00:00Z",
                    "customer_id": "acme",
                    "provider": "openai",
                    "model": "gpt-4o",
                    "input_tokens": n,
                    "output_tokens": 0,
                }
            )
            + "\n"
            for i, (via, n) in enumerate(calls)
            if via
        )
    )
    export = d / "spend.json"
    export.write_text(
        json.dumps(
            [
                {
                    "request_id": f"req-{i}",
                    "startTime": "2025-06-02T00:00:00Z",
                    "model": "gpt-4o",
                    "custom_llm_provider": "openai",
                    "end_user": "acme",
                    "prompt_tokens": n,
                    "completion_tokens": 0,
                    "request_tags": ["via:tailguard"] if via else [],
                }
                for i, (via, n) in enumerate(calls)
            ]
        )
    )
    (d / "map.toml").write_text('[exclude]\n"tag:via" = ["tailguard"]\n')
    mp = ImportMap.load(d / "map.toml")
    for step in [*steps, "gateway", "import"]:
        if step == "import":
            import_files("litellm", [export], d / "L", mapping=mp)
        elif any(via for via, _ in calls):
            ingest([gw], d / "L")
    con = Ledger(d / "L").connect()
    n, tokens = con.execute("SELECT count(*), sum(input_tokens) FROM events").fetchone()
    con.close()
    assert (n, tokens) == (len(calls), sum(t for _, t in calls))
