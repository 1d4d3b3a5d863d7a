"""Per-task cost by workload class against the eight-KPI framework's bands, worked out by hand.

Effective tokens per invocation = (input - cache_read) + cache_read x 0.1 + output x 4.

chat, task c1, two invocations:
    (1000 in, 0 cached, 100 out)      1000 + 0 + 400         = 1,400
    (2000 in, 1000 cached, 200 out)   1000 + 100 + 800       = 1,900
  plus one call with no task (500 in, 0 cached, 100 out): 500 + 400 = 900
  -> invocations 3, per invocation (1400 + 1900 + 900) / 3 = 1,400 (band 800-2,000: ok);
     per task (tasked calls only) 3,300 / 1 task = 3,300; over 5,000: none
agent, a1: 5 invocations and a2: 10, each (8000 in, 5000 cached, 500 out)
    3000 + 500 + 2000 = 5,500 each -> a1 27,500, a2 55,000 (> 40,000: looping)
  -> per task 82,500 / 2 = 41,250 > 40,000: act; over-alarm share 1/2;
     per invocation 5,500, which alone would look like a fine chat turn (the eight-KPI framework's
     trap)
rag, r1: (30000 in, 0, 500 out) = 32,000 (> 25,000); r2: (6000 in, 0, 500) = 8,000
  -> per invocation 20,000 (above 12,000: watch); over-alarm share 1/2

With cache_read_weight = 1 (the eight-KPI framework's literal formula), chat's second call is
2000 + 800 = 2,800: per invocation (1400 + 2800 + 900) / 3 = 1,700.
Costs: every call costs $0.01 -> chat cost per task 0.02 (2 tasked calls), per invocation 0.01.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tailguard.analytics.period import Window
from tailguard.analytics.workload import load_config, status, workload
from tailguard.cli import run
from tailguard.errors import ConfigError
from tests.analytics.helpers import connect, events_table

_n = iter(range(1, 10**6))


def call(wl: str, task: str | None, inp: int, cached: int, out: int) -> dict[str, Any]:
    return {
        "event_id": f"w{next(_n)}",
        "kind": "llm_call",
        "ts": "2025-06-10T10:00:00+00:00",
        "customer_id": "X",
        "task_id": task,
        "workload": wl,
        "model": "m",
        "attempt": 1,
        "input_tokens": inp,
        "cache_read_tokens": cached,
        "output_tokens": out,
        "cost_usd": "0.01",
        "unpriced": False,
    }


HAND = [
    call("chat", "c1", 1000, 0, 100),
    call("chat", "c1", 2000, 1000, 200),
    call("chat", None, 500, 0, 100),
    *[call("agent", "a1", 8000, 5000, 500) for _ in range(5)],
    *[call("agent", "a2", 8000, 5000, 500) for _ in range(10)],
    call("rag", "r1", 30000, 0, 500),
    call("rag", "r2", 6000, 0, 500),
    # a tool call carries no tokens and is not an invocation
    {**call("agent", "a1", 0, 0, 0), "kind": "tool_call", "model": None},
]


def by_class(rep: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["workload"]: c for c in rep["classes"]}


def test_by_hand() -> None:
    c = by_class(workload(connect(HAND), Window()))
    assert list(c) == ["chat", "agent", "rag"]
    chat, agent, rag = c["chat"], c["agent"], c["rag"]
    assert (chat["tasks"], chat["invocations"]) == (1, 3)
    assert chat["effective_tokens"] == 4200
    assert chat["effective_tokens_per_invocation"] == 1400.0
    assert chat["effective_tokens_per_task"] == 3300.0
    assert chat["over_alarm_share"] == 0.0
    assert chat["status"] == "ok"
    assert chat["cost_per_task"] == Decimal("0.02")
    assert chat["cost_per_invocation"] == Decimal("0.01")
    assert (agent["tasks"], agent["invocations"], agent["invocations_per_task"]) == (2, 15, 7.5)
    assert agent["effective_tokens_per_task"] == 41250.0
    assert agent["effective_tokens_per_invocation"] == 5500.0
    assert agent["over_alarm_share"] == 0.5
    assert agent["status"] == "act"
    assert agent["alarm_means"] == "agent looping"
    assert rag["effective_tokens_per_invocation"] == 20000.0
    assert rag["over_alarm_share"] == 0.5
    assert rag["status"] == "watch"


def test_literal_formula_and_config(tmp_path: Path) -> None:
    c = by_class(workload(connect(HAND), Window(), cache_read_weight=1.0))
    assert c["chat"]["effective_tokens_per_invocation"] == 1700.0
    p = tmp_path / "t.toml"
    p.write_text("[workload]\noutput_multiplier = 5\ncache_read_weight = 1\n")
    assert load_config(str(p)) == {"output_multiplier": 5.0, "cache_read_weight": 1.0}
    p.write_text("[workload]\nmultiplier = 5\n")
    with pytest.raises(ConfigError):
        load_config(str(p))
    with pytest.raises(ConfigError):
        workload(connect(HAND), Window(), cache_read_weight=2.0)


def test_status_bands() -> None:
    # chat per turn: 799 below the band, 800 and 2,000 in it, 5,000 still only watch, 5,001 act
    assert [status("chat", None, v) for v in (799, 800, 2000, 2001, 5000, 5001)] == [
        "watch", "ok", "ok", "watch", "watch", "act",
    ]  # fmt: skip
    # agent per task
    assert [status("agent", v, 1.0) for v in (7999, 8000, 20000, 40000, 40001)] == [
        "watch", "ok", "ok", "watch", "act",
    ]  # fmt: skip
    assert status("rag", None, 25001) == "act"
    assert status("rag", None, None) == "no_data"
    assert status("other", 1.0, 1.0) == "n/a"


def test_a_tail_inside_the_band_is_watched() -> None:
    # 19 chat turns of 1,000 and one of 6,000: mean 1,250 (in band) but 5% > 5,000 is the
    # limit (not above it: ok); a second 6,000 turn makes 2/21 = 9.5% > 5%: watch
    rows = [call("chat", f"t{i}", 600, 0, 100) for i in range(19)]
    rows.append(call("chat", "big", 5600, 0, 100))
    assert by_class(workload(connect(rows), Window()))["chat"]["status"] == "ok"
    rows.append(call("chat", "big2", 5600, 0, 100))
    c = by_class(workload(connect(rows), Window()))["chat"]
    assert c["over_alarm_share"] == 2 / 21  # every digit, not 0.0952
    assert c["status"] == "watch"


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["chat", "agent", "rag", "other"]),
            st.sampled_from(["t1", "t2", "t3", None]),
            st.integers(0, 50_000),
            st.integers(0, 100),  # cached % of input
            st.integers(0, 4_000),
        ),
        min_size=1,
        max_size=30,
    )
)
def test_tokens_are_conserved(calls: list[tuple[str, str | None, int, int, int]]) -> None:
    rows = [call(w, t, i, i * p // 100, o) for w, t, i, p, o in calls]
    rep = workload(connect(rows), Window(), cache_read_weight=1.0)
    total = sum(i + 4 * o for _, _, i, _, o in calls)
    assert sum(c["effective_tokens"] for c in rep["classes"]) == total
    assert sum(c["invocations"] for c in rep["classes"]) == len(calls)
    for c in rep["classes"]:
        # counted from the generated calls: every call of the class is an invocation (with a task
        # or not), its tasks are the distinct task ids; per task = invocations / tasks
        mine = [t for w, t, *_ in calls if w == c["workload"]]
        assert c["invocations"] == len(mine)
        assert c["tasks"] == len({t for t in mine if t})
        if c["tasks"]:
            assert c["invocations_per_task"] == len(mine) / c["tasks"]
        else:
            assert c["invocations_per_task"] is None


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seg = tmp_path / "led" / "segments"
    seg.mkdir(parents=True)
    pq.write_table(events_table(HAND), seg / "hand.parquet")
    led = str(tmp_path / "led")
    assert run(["workload", "--ledger", led, "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert by_class(rep)["agent"]["status"] == "act"
    assert run(["workload", "--ledger", led]) == 0
    assert "looping" not in capsys.readouterr().err
    assert run(["workload", "--help"]) == 0
    assert "Example" in capsys.readouterr().out
