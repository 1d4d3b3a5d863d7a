"""The event file: schema, determinism, structure (sessions, retries, outcomes, escalations)."""

from __future__ import annotations

import csv
import datetime as dt
import itertools
from decimal import Decimal
from pathlib import Path

import msgspec
import numpy as np
import pyarrow as pa
import pyarrow.compute
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tailguard.events.schema import (
    INPUT_COLUMNS,
    INPUT_SCHEMA,
    Event,
    LlmCall,
    TaskOutcome,
)
from tailguard.simulate import SimulationResult, simulate


def _files(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())}


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_same_seed_same_bytes(tmp_path: Path, fmt: str) -> None:
    a = simulate(customers=300, days=5, seed=11, out=tmp_path / "a", fmt=fmt)  # type: ignore[arg-type]
    simulate(customers=300, days=5, seed=11, out=tmp_path / "b", fmt=fmt)  # type: ignore[arg-type]
    simulate(customers=300, days=5, seed=12, out=tmp_path / "c", fmt=fmt)  # type: ignore[arg-type]
    assert a.events > 1000  # more than one chunk of customers
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert _files(tmp_path / "a")[f"events.{fmt}"] != _files(tmp_path / "c")[f"events.{fmt}"]


@pytest.fixture(scope="module")
def jsonl_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationResult, list[Event]]:
    res = simulate(customers=120, days=10, seed=5, out=tmp_path_factory.mktemp("j"), fmt="jsonl")
    dec = msgspec.json.Decoder(Event)
    with open(res.events_path, "rb") as f:
        events = [dec.decode(line) for line in f]
    return res, events


def test_every_jsonl_line_validates(jsonl_run: tuple[SimulationResult, list[Event]]) -> None:
    res, events = jsonl_run
    assert len(events) == res.events
    kinds = {type(e).__name__ for e in events}
    assert kinds == {"LlmCall", "ToolCall", "Retrieval", "Escalation", "TaskOutcome", "Guard"}
    ids = [e.event_id for e in events]
    assert len(set(ids)) == len(ids)
    assert all(e.ts.utcoffset() == dt.timedelta(0) for e in events)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert all(start <= e.ts < start + dt.timedelta(days=12) for e in events)
    llm = [e for e in events if isinstance(e, LlmCall)]
    assert all(e.provider in ("openai", "anthropic") for e in llm)
    # pricing happens at ingest; only a few customers' calls carry a provider-reported cost
    reported = [e for e in llm if e.cost_usd is not None]
    # (5% of customers, so a share of calls that depends on who they are: a planted automation
    # customer among them carries many calls)
    assert 0 < len(reported) < 0.5 * len(llm)
    assert {e.workload for e in llm} == {"chat", "agent", "rag"}
    assert any(e.cache_read_tokens > 0 for e in llm)
    assert any(e.cache_write_tokens > 0 for e in llm)  # Anthropic writes its cache
    assert any(e.reasoning_tokens > 0 for e in llm)


def test_reported_costs_are_the_provider_price(
    jsonl_run: tuple[SimulationResult, list[Event]],
) -> None:
    from genai_prices import Usage, calc_price

    _, events = jsonl_run
    reported = [e for e in events if isinstance(e, LlmCall) and e.cost_usd is not None][:200]
    assert reported
    for e in reported:
        usage = Usage(
            input_tokens=e.input_tokens,
            output_tokens=e.output_tokens,
            cache_read_tokens=e.cache_read_tokens,
            cache_write_tokens=e.cache_write_tokens,
        )
        expected = calc_price(usage, e.model, provider_id=e.provider).total_price
        assert e.cost_usd is not None
        assert abs(e.cost_usd - expected) <= Decimal("1e-9"), (e.model, e.cost_usd, expected)


def test_customers_csv(jsonl_run: tuple[SimulationResult, list[Event]]) -> None:
    res, events = jsonl_run
    with open(res.customers_path) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "customer_id", "name", "tier", "segment", "mrr_usd", "seats",
        "contracted_pool_usd", "signup_date",
    ]  # fmt: skip
    assert len(rows) == 120
    assert {r["tier"] for r in rows} <= {"free", "pro", "team", "enterprise", "custom"}
    assert {r["segment"] for r in rows} <= {"smb", "mid_market", "enterprise", "usage_based"}
    assert all(float(r["mrr_usd"]) == 0 for r in rows if r["tier"] == "free")
    assert all(float(r["mrr_usd"]) > 0 for r in rows if r["tier"] in ("pro", "team"))
    assert all(int(r["seats"]) >= 1 for r in rows)
    dt.date.fromisoformat(rows[0]["signup_date"])
    assert {e.customer_id for e in events} <= {r["customer_id"] for r in rows}


def test_exactly_one_outcome_per_task_and_it_comes_last(
    jsonl_run: tuple[SimulationResult, list[Event]],
) -> None:
    _, events = jsonl_run
    outcomes: dict[str, list[TaskOutcome]] = {}
    last: dict[str, dt.datetime] = {}
    for e in events:
        if e.task_id is None:  # only a guard that denied a session before it started
            assert type(e).__name__ == "Guard" and e.session_id is None
            continue
        if isinstance(e, TaskOutcome):
            outcomes.setdefault(e.task_id, []).append(e)
        elif type(e).__name__ != "Guard":
            last[e.task_id] = max(last.get(e.task_id, e.ts), e.ts)
    assert set(outcomes) == set(last)
    assert all(len(v) == 1 for v in outcomes.values())
    assert all(outcomes[t][0].ts >= ts for t, ts in last.items())


def test_escalations_match_escalated_outcomes(
    jsonl_run: tuple[SimulationResult, list[Event]],
) -> None:
    _, events = jsonl_run
    escalated = {
        e.task_id for e in events if isinstance(e, TaskOutcome) and e.outcome == "escalated"
    }
    esc = [e for e in events if type(e).__name__ == "Escalation"]
    assert {e.task_id for e in esc} == escalated
    assert len(esc) == len(escalated)
    assert all(e.minutes > 0 for e in esc)  # type: ignore[attr-defined]


def test_retries_follow_failed_attempts(jsonl_run: tuple[SimulationResult, list[Event]]) -> None:
    _, events = jsonl_run
    llm = sorted((e for e in events if isinstance(e, LlmCall)), key=lambda e: (e.task_id, e.ts))
    retries = 0
    for prev, cur in itertools.pairwise(llm):
        if cur.attempt > 1:
            retries += 1
            # the attempt before a retry is the same call, and it failed
            assert prev.task_id == cur.task_id
            assert prev.attempt == cur.attempt - 1 and prev.status == "error"
            assert prev.input_tokens == cur.input_tokens
    assert retries > 0


def test_input_grows_turn_by_turn_within_sessions(
    jsonl_run: tuple[SimulationResult, list[Event]],
) -> None:
    _, events = jsonl_run
    by_session: dict[str, list[LlmCall]] = {}
    for e in events:
        if isinstance(e, LlmCall):
            by_session.setdefault(e.session_id or "", []).append(e)
    grew = 0
    multi = 0
    for calls in by_session.values():
        calls.sort(key=lambda e: e.ts)
        inputs = [c.input_tokens for c in calls]
        assert inputs == sorted(inputs)  # never shrinks: context accumulates
        if len(calls) >= 4:
            multi += 1
            # the cost-per-resolved-task article: by the later turns the prompt is a multiple of the
            # first one
            grew += inputs[-1] >= 2 * inputs[0]
    assert multi > 50 and grew / multi > 0.5


def test_parquet_has_exactly_the_input_columns(tmp_path: Path) -> None:
    res = simulate(customers=40, days=3, seed=2, out=tmp_path, fmt="parquet")
    schema = pq.read_schema(res.events_path)
    assert schema.names == list(INPUT_COLUMNS)
    for name in INPUT_COLUMNS:
        assert schema.field(name).type == INPUT_SCHEMA.field(name).type, name
    t = pq.read_table(res.events_path)
    assert t.num_rows == res.events
    llm = t.filter(pa.compute.equal(t.column("kind"), "llm_call"))
    assert t.column("cost_usd").null_count >= t.num_rows - llm.num_rows
    # no source system stands between the simulated product and its ledger: the gateway's
    # provider-reported cost is cost_usd, and a source's own figure (reported_cost_usd) is absent
    assert t.column("reported_cost_usd").null_count == t.num_rows
    ids = t.column("event_id").to_numpy(zero_copy_only=False)
    assert len(np.unique(ids)) == len(ids)


def test_guard_events_follow_the_budgets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard's decisions as the engine logs them: at most one soft-threshold alert per
    customer and month; each ``degrade`` just before the call it degraded (1 us), which runs on
    the budget sibling it names; each ``overage`` a positive dollar amount; each ``deny`` with no
    session (nothing ran)."""
    import dataclasses

    from tailguard.simulate import budgets
    from tailguard.simulate import catalog as cat

    # a tight pro pool ($2 a seat), so that pro customers cross the soft threshold and every
    # kind of decision is exercised (the demo's $20 a seat is rarely reached in a month)
    tiers = list(budgets.TIER_BUDGETS)
    tiers[1] = dataclasses.replace(tiers[1], pool_per_seat_usd=2.0)
    monkeypatch.setattr(budgets, "TIER_BUDGETS", tuple(tiers))
    res = simulate(customers=400, days=30, seed=3, out=tmp_path, fmt="parquet")
    t = pq.read_table(res.events_path).to_pylist()
    guard = [g for g in t if g["kind"] == "guard"]
    actions = {g["action"] for g in guard}
    assert {"soft_threshold", "overage", "degrade"} <= actions
    assert actions <= {"soft_threshold", "deny", "degrade", "overage"}
    alerts = [(g["customer_id"], g["ts"].month) for g in guard if g["action"] == "soft_threshold"]
    assert len(alerts) == len(set(alerts))
    calls = {(e["session_id"], e["ts"]): e["model"] for e in t if e["kind"] == "llm_call"}
    cheaper = set(cat.DOWNGRADE_TO.values())
    for g in guard:
        if g["action"] == "degrade":
            assert g["model"] in cheaper
            assert calls[(g["session_id"], g["ts"] + dt.timedelta(microseconds=1))] == g["model"]
        elif g["action"] == "overage":
            assert g["amount_usd"] > 0
        elif g["action"] == "deny":
            assert g["session_id"] is None and g["task_id"] is None


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    customers=st.integers(1, 40),
    days=st.integers(1, 6),
    seed=st.integers(0, 2**31),
)
def test_any_small_run_is_valid(tmp_path: Path, customers: int, days: int, seed: int) -> None:
    out = tmp_path / f"{customers}-{days}-{seed}"
    res = simulate(customers=customers, days=days, seed=seed, out=out, fmt="jsonl")
    dec = msgspec.json.Decoder(Event)
    with open(res.events_path, "rb") as f:
        events = [dec.decode(line) for line in f]
    assert len(events) == res.events
    tasks = {e.task_id for e in events if e.task_id is not None}
    outcomes = [e.task_id for e in events if isinstance(e, TaskOutcome)]
    assert sorted(outcomes) == sorted(tasks) and len(set(outcomes)) == len(outcomes)
    assert sum(res.events_by_kind.values()) == res.events
