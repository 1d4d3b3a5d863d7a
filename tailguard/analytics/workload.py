"""Per-task cost by workload class, in the eight-KPI framework's effective tokens, against its
target bands.

The eight-KPI framework prices every model invocation in **effective tokens** = ``input + output x
multiplier``: tokens weighted by what they cost relative to an input token. The output multiplier is
the output/input price ratio ("typically 3 to 5x on Sonnet-class models"; default 4). By the same
logic a cache-read token counts at its price ratio, ``cache_read_weight`` (default 0.1: Anthropic
bills cache reads at 10% of input, recent OpenAI models at 10-25%); set it to 1 for the literal
formula. So, per invocation::

    effective = (input - cache_read) + cache_read x cache_read_weight + output x multiplier

Both are ``[workload]`` keys in the config file. Input includes cache writes and retrieved
context, output includes reasoning (the ledger's OpenTelemetry convention), so the RAG formula
``input + retrieved_context + output x multiplier`` is the same sum. Why the cache weight
matters: a multi-turn session re-sends its history, mostly from cache; counted at full weight, a
healthy chat turn reads as 3,000+ tokens and every class looks out of band.

Its bands (and alarm levels) are per *turn* for chat and rag and per *task* for agents:

========  ==================  ======================  ==========================
class     unit                target band             alarm
========  ==================  ======================  ==========================
chat      turn                800 - 2,000             > 5,000 (over-stuffed)
agent     task                8,000 - 20,000          > 40,000 (looping)
rag       turn                4,000 - 12,000          > 25,000 (over-fetching)
========  ==================  ======================  ==========================

The eight-KPI framework's trap: a per-task figure divided by *user-visible* turns undercounts an
agent that calls the model five times per turn. The ledger has no user-visible turns, only model
invocations (``llm_call`` rows, retries included), so a "turn" here is one model invocation and
every class is reported both ways: per task and per invocation, with invocations per task between
them, so a reader sees the factor the trap hides.

Status of a class (from its band metric's mean, and the share of units above the alarm):
``act`` when the mean is above the alarm; ``watch`` when the mean is outside the band, or more
than ``tail_share`` (default 5%) of its turns/tasks are above the alarm; ``ok`` otherwise. A class
with no invocations is ``no_data``.

From the events, one engine query: the inner GROUP BY makes one row per (class, task) (a task's
effective tokens), the outer one rolls those up per class; from the task roll-up, the class sums
straight from its rows and the per-task counts from a lighter per-task GROUP BY; the calls over
the per-turn alarm (a test of each call) from the call-size roll-up when its sizes answer the
alarm exactly (the default weights, an alarm of two significant digits), else from the events.
Portable SQL.
Tokens are integers; per-unit figures are floats, unrounded (a status judges the exact value);
cost per task and per invocation are Decimal quotients at Decimal's 28 significant digits (the
default context, half-even), never rounded to micro-dollars. JSON and CSV carry every digit; only
the terminal table rounds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from tailguard.analytics.context import TASK, QueryContext, using
from tailguard.analytics.period import Window, bounded
from tailguard.errors import ConfigError
from tailguard.ledger.rollup import CALL_SIZE_WEIGHTS, CALLS_VIEW, size_edge
from tailguard.vocabulary import WORKLOADS


@dataclass(frozen=True)
class Band:
    """The eight-KPI framework's band for one workload class."""

    unit: str  # "turn" (= one model invocation) or "task"
    low: int
    high: int
    alarm: int
    alarm_means: str
    under: int | None  # below this, the eight-KPI framework says the class is under-used
    under_means: str | None


BANDS: dict[str, Band] = {
    "chat": Band("turn", 800, 2_000, 5_000, "prompt over-stuffed", 400, "context starving"),
    "agent": Band("task", 8_000, 20_000, 40_000, "agent looping", 5_000, "tools under-used"),
    "rag": Band("turn", 4_000, 12_000, 25_000, "retrieval over-fetching", None, None),
}
CLASSES: tuple[str, ...] = WORKLOADS

#: per class: its tasks and their sums, from one row per (class, task) (``{tasks}``: the
#: events', ``EVENT_TASKS_SQL``; the task roll-up's figures come from two queries instead,
#: ``ROLLUP_CLASS_SQL`` and ``ROLLUP_TASK_COUNTS_SQL``). Token sums stay integers to the end
#: (``uncached`` = input - cache reads, weighed apart from the cache reads), so a class's
#: effective tokens are computed once, exactly, from them (``_effective``), whichever relation
#: the rows came from; a task's own effective tokens (against the per-task alarm) are the same
#: DOUBLE expression of the same integer sums on either
WORKLOAD_SQL = """
SELECT
  workload,
  count(*) AS tasks,
  sum(calls) AS calls,
  sum(uncached) AS uncached,
  sum(cache_read_tokens) AS cache_read_tokens,
  sum(output_tokens) AS output_tokens,
  sum(input_tokens) AS input_tokens,
  sum(cost) AS cost_usd,
  sum(CASE WHEN task_id IS NOT NULL AND {task_over} THEN 1 ELSE 0 END)
    AS tasks_over_alarm,
  sum(CASE WHEN task_id IS NULL THEN 1 ELSE 0 END) AS untasked_groups,
  sum(CASE WHEN task_id IS NULL THEN uncached ELSE 0 END) AS untasked_uncached,
  sum(CASE WHEN task_id IS NULL THEN cache_read_tokens ELSE 0 END) AS untasked_cache_read,
  sum(CASE WHEN task_id IS NULL THEN output_tokens ELSE 0 END) AS untasked_output,
  sum(CASE WHEN task_id IS NULL THEN cost END) AS untasked_cost
FROM ({tasks}) t
GROUP BY workload
"""

#: one row per (class, task) from the events' LLM calls
EVENT_TASKS_SQL = """
  SELECT
    coalesce(workload, 'other') AS workload,
    task_id,
    sum(coalesce(requests, 1)) AS calls,
    sum(input_tokens - cache_read_tokens) AS uncached,
    sum(input_tokens) AS input_tokens,
    sum(output_tokens) AS output_tokens,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(cost_usd) AS cost
  FROM events
  WHERE kind = 'llm_call' AND {where}
  GROUP BY 1, 2
"""

#: on the task roll-up the class sums need no per-task grouping (sums of sums are the sums):
#: its rows summed per class directly, the untasked calls' sums beside them
#: (``ROLLUP_CLASS_SQL``), and only the counts that do need one group per (class, task), the
#: tasks and those over the per-task alarm, from groups carrying just the three token sums the
#: alarm reads (``ROLLUP_TASK_COUNTS_SQL``): together the columns of ``WORKLOAD_SQL``, the same
#: integers and Decimals, with half the sums kept per task (1.3M tasks at the bench)
ROLLUP_CLASS_SQL = """
SELECT
  coalesce(workload, 'other') AS workload,
  sum(calls) AS calls,
  sum(uncached_tokens) AS uncached,
  sum(cache_read_tokens) AS cache_read_tokens,
  sum(output_tokens) AS output_tokens,
  sum(input_tokens) AS input_tokens,
  sum(cost_usd) AS cost_usd,
  sum(CASE WHEN task_id IS NULL THEN uncached_tokens ELSE 0 END) AS untasked_uncached,
  sum(CASE WHEN task_id IS NULL THEN cache_read_tokens ELSE 0 END) AS untasked_cache_read,
  sum(CASE WHEN task_id IS NULL THEN output_tokens ELSE 0 END) AS untasked_output,
  sum(CASE WHEN task_id IS NULL THEN cost_usd END) AS untasked_cost
FROM rollup_task
WHERE calls > 0 AND {where}
GROUP BY 1
"""

ROLLUP_TASK_COUNTS_SQL = """
SELECT
  workload,
  count(*) AS tasks,
  sum(CASE WHEN task_id IS NOT NULL AND {task_over} THEN 1 ELSE 0 END)
    AS tasks_over_alarm,
  sum(CASE WHEN task_id IS NULL THEN 1 ELSE 0 END) AS untasked_groups
FROM (
  SELECT
    coalesce(workload, 'other') AS workload,
    task_id,
    sum(uncached_tokens) AS uncached,
    sum(cache_read_tokens) AS cache_read_tokens,
    sum(output_tokens) AS output_tokens
  FROM rollup_task
  WHERE calls > 0 AND {where}
  GROUP BY 1, 2
) t
GROUP BY workload
"""

#: the invocations over the per-turn alarm of a class judged per turn (chat, rag): a test of
#: each call on its own, which no sum of tokens answers. From the call-size roll-up
#: (``rollup_calls``: requests per workload, day and size) when the weights are the ones its
#: sizes were computed with and every alarm is one of its size edges (``ROLLUP_CALLS_OVER_SQL``:
#: ``size >= alarm``, exact); else from the events, only those
#: classes' LLM calls, with no per-task grouping. An aggregate row (an imported usage bucket) is
#: judged by its mean call, and counts as its requests, on both
ROLLUP_CALLS_OVER_SQL = """
SELECT coalesce(workload, 'other') AS workload,
  sum(CASE WHEN CASE coalesce(workload, 'other') {alarms} END THEN calls ELSE 0 END) AS calls_over
FROM rollup_calls
WHERE coalesce(workload, 'other') IN ({classes}) AND {where}
GROUP BY 1
"""

CALLS_OVER_SQL = """
SELECT coalesce(workload, 'other') AS workload,
  sum(CASE WHEN CASE coalesce(workload, 'other') {alarms} END
      THEN coalesce(requests, 1) ELSE 0 END) AS calls_over
FROM events
WHERE kind = 'llm_call' AND coalesce(workload, 'other') IN ({classes}) AND {where}
GROUP BY 1
"""


def _weight(x: float) -> Fraction:
    """A weight as the decimal it is written as (``0.1`` is one tenth, not the binary float
    nearest to it): the reading the alarm tests in SQL and the figures shown share."""
    return Fraction(repr(float(x)))


def _effective(uncached: Any, cache_read: Any, output: Any, w: float, m: float) -> float:
    """``uncached + cache_read x w + output x m``, exact (the integers and the two weights as
    the decimals they are written as, ``_weight``), rounded once to a float: the same value
    whatever order the engine summed the rows in."""
    exact = (
        Fraction(int(uncached or 0))
        + Fraction(int(cache_read or 0)) * _weight(w)
        + Fraction(int(output or 0)) * _weight(m)
    )
    return float(exact)


def _over_alarm_sql(uncached: str, cache_read: str, output: str, w: float, m: float) -> Any:
    """A function of (alarm, per) giving the SQL test ``effective tokens > alarm x per`` in
    integers: both sides scaled by the weights' common denominator ``d``, so
    ``d x uncached + (w d) x cache_read + (m d) x output > alarm x d x per`` holds exactly when
    the exact effective tokens exceed the alarm. A decimal literal in the SQL instead
    (``0.1``) is an exact DECIMAL in DuckDB but a Float64 in ClickHouse: a call exactly on
    its alarm was counted over it by one engine and not by the other."""
    fw, fm = _weight(w), _weight(m)
    d = math.lcm(fw.denominator, fm.denominator)
    kc, ko = int(fw * d), int(fm * d)
    lhs = f"({d} * ({uncached}) + {kc} * ({cache_read}) + {ko} * ({output}))"

    def over(alarm: Any, per: str = "1") -> str:
        fa = Fraction(repr(alarm)) if isinstance(alarm, float) else Fraction(int(alarm))
        return f"{lhs} * {fa.denominator} > {fa.numerator * d} * ({per})"

    return over


def _calls_rollup(
    con: QueryContext,
    win: Window,
    per_turn: list[str],
    judge: Mapping[str, Band],
    w: float,
    m: float,
) -> tuple[str, list[Any]] | None:
    """The call-size roll-up's WHERE for ``win`` when it answers the per-turn alarm exactly:
    the weights are those its sizes were computed with (``CALL_SIZE_WEIGHTS``, compared as the
    decimals written, ``_weight``) and every per-turn alarm is one of its size edges
    (``rollup.size_edge``: two significant digits, as the framework's 5,000 and 25,000); else
    None (the events answer)."""
    if (_weight(w), _weight(m)) != CALL_SIZE_WEIGHTS:
        return None
    for c in per_turn:
        alarm = Fraction(judge[c].alarm)
        if alarm.denominator != 1 or size_edge(int(alarm)) != alarm:
            return None
    return con.rollup_where(win, CALLS_VIEW)


def _by_class(cur: Any) -> dict[str, dict[str, Any]]:
    """The rows of a per-class query as {class: {column: value}}."""
    cols = [d[0] for d in cur.description]
    return {r[0]: dict(zip(cols, r, strict=True)) for r in cur.fetchall()}


CONFIG_KEYS = ("output_multiplier", "cache_read_weight", "tail_share")


def load_config(path: str | None = None) -> dict[str, float]:
    """The ``[workload]`` table of the config file as keyword arguments for ``workload()``."""
    from tailguard.config import section

    sec = section("workload", CONFIG_KEYS, path)
    try:
        return {k: float(v) for k, v in sec.items()}
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[workload]: {exc}") from None


def status(
    cls: str,
    per_task: float | None,
    per_call: float | None,
    bands: Mapping[str, Band] | None = None,
) -> str:
    """``ok`` | ``watch`` | ``act`` | ``no_data`` (see the module docstring); ``other``: n/a.
    ``bands``: the bands to judge by (default the eight-KPI framework's, ``BANDS``)."""
    band = (bands or BANDS).get(cls)
    if band is None:
        return "n/a"
    v = per_task if band.unit == "task" else per_call
    if v is None:
        return "no_data"
    if v > band.alarm:
        return "act"
    if v > band.high or v < band.low:
        return "watch"
    return "ok"


def workload(
    ledger: Any,
    win: Window | None = None,
    *,
    window: Window | None = None,
    output_multiplier: float = 4.0,
    cache_read_weight: float = 0.1,
    tail_share: float = 0.05,
    bands: Mapping[str, Band] | None = None,
) -> dict[str, Any]:
    """Effective tokens per task and per invocation by workload class (``_workload`` has the
    fields).

    ``ledger``: a ``QueryContext``, a ``Ledger`` or its directory, or an open connection (the
    old form); the window is ``window=`` (or the second argument, the old form), default every
    day the ledger holds events.
    """
    with using(ledger) as ctx:
        return _workload(
            ctx,
            window or win or Window(),
            output_multiplier=output_multiplier,
            cache_read_weight=cache_read_weight,
            tail_share=tail_share,
            bands=bands,
        )


def _workload(
    con: QueryContext,
    win: Window,
    *,
    output_multiplier: float = 4.0,
    cache_read_weight: float = 0.1,
    tail_share: float = 0.05,
    bands: Mapping[str, Band] | None = None,
) -> dict[str, Any]:
    """Effective tokens and cost per task and per invocation for each workload class.

    ``bands`` replaces the eight-KPI framework's band of a class (``BANDS``) for a product whose
    tasks are sized differently (a policy's ``[kpis.workload.CLASS]``); classes it leaves out
    keep the framework's.

    ``classes`` lists chat, agent, rag (always, ``no_data`` when absent) and ``other`` when it
    has calls. LLM calls without a ``task_id`` count as invocations but not as tasks.
    ``window`` states the days covered (an open window: the days its events span);
    ``NoDataError`` when the window holds no events.
    """
    if output_multiplier <= 0:
        raise ConfigError("output_multiplier must be > 0")
    if not 0 <= cache_read_weight <= 1:
        raise ConfigError("cache_read_weight must be in [0, 1]")
    stated = bounded(con, win)
    where, params = win.sql()
    w, m = float(cache_read_weight), float(output_multiplier)
    judge = {**BANDS, **(bands or {})}
    on_task = con.rollup_where(win, TASK)
    # ``tasks_over_alarm`` uses the agent's per-task alarm; it is only reported for classes
    # whose band is per task
    task_over = _over_alarm_sql("uncached", "cache_read_tokens", "output_tokens", w, m)(
        judge["agent"].alarm
    )
    if on_task is not None:
        got = _by_class(con.execute(ROLLUP_CLASS_SQL.format(where=on_task[0]), on_task[1]))
        counts = ROLLUP_TASK_COUNTS_SQL.format(where=on_task[0], task_over=task_over)
        for cls, c in _by_class(con.execute(counts, on_task[1])).items():
            got.setdefault(cls, {}).update(c)
    else:
        sql = WORKLOAD_SQL.format(tasks=EVENT_TASKS_SQL.format(where=where), task_over=task_over)
        got = _by_class(con.execute(sql, list(params)))
    # the per-turn alarm's calls, per class judged per turn (``other`` has no band: none)
    per_turn = [c for c in CLASSES if c in judge and judge[c].unit == "turn"]
    over: dict[str, int] = {}
    on_calls = _calls_rollup(con, win, per_turn, judge, w, m)
    if per_turn and on_calls is not None:
        alarms = " ".join(f"WHEN '{c}' THEN size >= {int(judge[c].alarm)}" for c in per_turn)
        over_sql = ROLLUP_CALLS_OVER_SQL.format(
            alarms=alarms, classes=", ".join(f"'{c}'" for c in per_turn), where=on_calls[0]
        )
        over = {r[0]: int(r[1] or 0) for r in con.execute(over_sql, on_calls[1]).fetchall()}
    elif per_turn:
        call_over = _over_alarm_sql(
            "input_tokens - cache_read_tokens", "cache_read_tokens", "output_tokens", w, m
        )
        per = "coalesce(requests, 1)"
        alarms = " ".join(f"WHEN '{c}' THEN {call_over(judge[c].alarm, per)}" for c in per_turn)
        over_sql = CALLS_OVER_SQL.format(
            alarms=alarms,
            classes=", ".join(f"'{c}'" for c in per_turn),
            where=where,
        )
        over = {r[0]: int(r[1] or 0) for r in con.execute(over_sql, params).fetchall()}
    classes = []
    for cls in CLASSES:
        a = got.get(cls)
        if a is None and cls == "other":
            continue
        band = judge.get(cls)
        a = a or {}
        calls = int(a.get("calls") or 0)
        tasks = int(a.get("tasks") or 0) - int(a.get("untasked_groups") or 0)
        eff = _effective(
            a.get("uncached"), a.get("cache_read_tokens"), a.get("output_tokens"), w, m
        )
        cost = a.get("cost_usd") or Decimal(0)
        # per task: only the calls that belong to a task (their sums: all minus the untasked)
        task_eff = _effective(
            int(a.get("uncached") or 0) - int(a.get("untasked_uncached") or 0),
            int(a.get("cache_read_tokens") or 0) - int(a.get("untasked_cache_read") or 0),
            int(a.get("output_tokens") or 0) - int(a.get("untasked_output") or 0),
            w,
            m,
        )
        task_cost = cost - (a.get("untasked_cost") or Decimal(0))
        per_task = task_eff / tasks if tasks else None
        per_call = eff / calls if calls else None
        if band is not None and band.unit == "task":
            units, over_n = tasks, int(a.get("tasks_over_alarm") or 0)
        else:
            units, over_n = calls, over.get(cls, 0)
        over_share = over_n / units if units else 0.0
        st = status(cls, per_task, per_call, judge)
        if st == "ok" and over_share > tail_share:
            st = "watch"
        inp = int(a.get("input_tokens") or 0)
        classes.append(
            {
                "workload": cls,
                "tasks": tasks,
                "invocations": calls,
                "invocations_per_task": calls / tasks if tasks else None,
                # weighted tokens can be fractional (cache reads at a fraction): kept whole
                "effective_tokens": int(eff) if eff.is_integer() else eff,
                "effective_tokens_per_task": per_task,
                "effective_tokens_per_invocation": per_call,
                "cache_read_share": int(a.get("cache_read_tokens") or 0) / inp if inp else None,
                "cost_usd": cost,
                "cost_per_task": task_cost / tasks if tasks else None,
                "cost_per_invocation": cost / calls if calls else None,
                "band_unit": band.unit if band else None,
                "band": [band.low, band.high] if band else None,
                "alarm": band.alarm if band else None,
                "alarm_means": band.alarm_means if band else None,
                "over_alarm_share": over_share if band else None,
                "status": st,
            }
        )
    return {
        "window": stated.stated(),
        "output_multiplier": output_multiplier,
        "cache_read_weight": cache_read_weight,
        "tail_share": tail_share,
        "classes": classes,
    }
