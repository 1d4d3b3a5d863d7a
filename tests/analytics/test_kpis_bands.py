"""A policy's ``[kpis.workload.CLASS]`` bands: the per-task panel judges by them.

The eight-KPI framework's per-task bands (chat 800-2,000 effective tokens a turn, agent
8,000-20,000 a task, rag 4,000-12,000 a turn) describe its own product; "absolute numbers vary
by product". A product whose tasks are sized otherwise (2026 agents carrying 10k tokens of tool
definitions) states its bands in the policy, and the panel says which band it judged by.

Ledger: three chat calls of 1,000 input + 100 output tokens, no cache: effective tokens per
invocation 1,000 + 100 x 4 (the output multiplier) = 1,400 (worked out by hand).
    framework band 800-2,000, alarm 5,000                  -> ok
    policy band 1,500-3,000, alarm 6,000: 1,400 < 1,500     -> watch (below the band)
    policy band 500-1,000, alarm 1,300: 1,400 > 1,300       -> act; every call over the alarm
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tailguard.analytics.kpis import kpis
from tailguard.guard.policy import PolicyError, load_policy, parse_policy
from tests.analytics.helpers import POLICY, Events, make_ledger

CSV = "C1,C1,pro,smb,100,1,,2025-01-01\n"


@pytest.fixture(scope="module")
def chat_ledger(tmp_path_factory: pytest.TempPathFactory) -> Any:
    e = Events()
    for d in (3, 4, 5):
        e.llm("C1", "c1u", f"2026-02-{d:02d}T12:00:00Z", "0.01")
    return make_ledger(tmp_path_factory.mktemp("bands"), e.rows, CSV)


def _chat(led: Any, bands: dict[str, Any] | None) -> dict[str, Any]:
    pol = dict(POLICY)
    if bands is not None:
        pol["kpis"] = {"workload": bands}
    con = led.connect()
    try:
        rep = kpis(con, period="2026-02", policy=parse_policy(pol))
    finally:
        con.close()
    task = next(k for k in rep["kpis"] if k["id"] == "per_task_cost")
    return next(m for m in task["metrics"] if m["id"] == "chat_effective_tokens")


def test_framework_band_without_a_kpis_table(chat_ledger: Any) -> None:
    m = _chat(chat_ledger, None)
    assert (m["value"], m["band"], m["status"], m["band_source"]) == (
        1400.0,
        [800, 2000],
        "ok",
        "framework",
    )


def test_policy_band_replaces_the_framework_band(chat_ledger: Any) -> None:
    """Fails on code that ignores the policy: it judges 1,400 by 800-2,000 (ok)."""
    m = _chat(chat_ledger, {"chat": {"low": 1500, "high": 3000, "alarm": 6000}})
    assert (m["band"], m["alarm"], m["status"], m["band_source"]) == (
        [1500, 3000],
        6000,
        "watch",
        "policy",
    )


def test_policy_alarm_counts_the_calls_over_it(chat_ledger: Any) -> None:
    """The alarm reaches the engine's per-call count too: all 3 calls (1,400) are over 1,300."""
    m = _chat(chat_ledger, {"chat": {"low": 500, "high": 1000, "alarm": 1300}})
    assert m["status"] == "act"
    con = chat_ledger.connect()
    try:
        from tailguard.analytics.period import Window
        from tailguard.analytics.workload import Band, workload

        own = {"chat": Band("turn", 500, 1000, 1300, "prompt over-stuffed", None, None)}
        chat = next(
            c for c in workload(con, Window(), bands=own)["classes"] if c["workload"] == "chat"
        )
    finally:
        con.close()
    assert chat["over_alarm_share"] == 1.0


@pytest.mark.parametrize(
    ("kpis_table", "key", "reason"),
    [
        ({"workload": {"chat": {"low": 1, "high": 2}}}, "kpis.workload.chat.alarm", "required"),
        (
            {"workload": {"video": {"low": 1, "high": 2, "alarm": 3}}},
            "kpis.workload.video",
            "unknown",
        ),
        (
            {"workload": {"chat": {"low": 1, "high": 2, "alarm": 3, "under": 1}}},
            "kpis.workload.chat.under",
            "unknown key",
        ),
        (
            {"workload": {"agent": {"low": 5, "high": 5, "alarm": 9}}},
            "kpis.workload.agent",
            "low < high",
        ),
        ({"workload": {"rag": {"low": 0, "high": 5, "alarm": 9}}}, "kpis.workload.rag.low", "> 0"),
        (
            {"workload": {"rag": {"low": 1.5, "high": 5, "alarm": 9}}},
            "kpis.workload.rag.low",
            "whole",
        ),
        ({"seat": {}}, "kpis.seat", "unknown key"),
    ],
)
def test_bad_kpis_table_is_refused_naming_the_key(
    kpis_table: dict[str, Any], key: str, reason: str
) -> None:
    with pytest.raises(PolicyError) as exc:
        parse_policy({**POLICY, "kpis": kpis_table}, source="p.toml")
    assert f"p.toml: {key}: " in str(exc.value) and reason in str(exc.value)


def test_kpis_table_from_a_file(tmp_path: Path) -> None:
    p = tmp_path / "policy.toml"
    p.write_text(
        "[tiers.free]\nhard_limit_tokens = 10\n[kpis.workload.agent]\n"
        "low = 80_000\nhigh = 400_000\nalarm = 800_000\n"
    )
    assert load_policy(p).workload_bands == {"agent": (80_000, 400_000, 800_000)}
    assert tomllib.loads(p.read_text())["kpis"]  # the table is plain TOML


@given(
    st.integers(1, 10_000).flatmap(
        lambda low: st.integers(low + 1, 20_000).flatmap(
            lambda high: st.tuples(st.just(low), st.just(high), st.integers(high + 1, 40_000))
        )
    )
)
def test_any_ordered_band_is_accepted_and_kept(band: tuple[int, int, int]) -> None:
    low, high, alarm = band
    pol = parse_policy(
        {
            **POLICY,
            "kpis": {"workload": {"rag": dict(zip(("low", "high", "alarm"), band, strict=True))}},
        }
    )
    assert pol.workload_bands == {"rag": (low, high, alarm)}
