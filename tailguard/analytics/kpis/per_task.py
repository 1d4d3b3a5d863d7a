"""1. ``per_task_cost``: effective tokens per task / per invocation by workload class."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tailguard.analytics.kpis.common import kpi, metric

if TYPE_CHECKING:
    from tailguard.analytics.kpis.tables import PanelTables
    from tailguard.guard.policy import Policy


def workload_bands(policy: Policy | None) -> dict[str, Any]:
    """The policy's ``[kpis.workload.CLASS]`` bands as ``workload.Band`` (its unit and alarm
    meaning the framework's for that class); empty without a policy or without the table."""
    from dataclasses import replace

    from tailguard.analytics.workload import BANDS

    if policy is None:
        return {}
    return {
        cls: replace(BANDS[cls], low=low, high=high, alarm=alarm, under=None, under_means=None)
        for cls, (low, high, alarm) in policy.workload_bands.items()
    }


def panel_workload(ctx: Any, win: Any, policy: Policy | None) -> dict[str, Any]:
    """The ``workload`` report ``kpi_per_task`` judges: the window's classes with the policy's
    bands."""
    from tailguard.analytics.workload import workload

    return workload(ctx, win, bands=workload_bands(policy))


def kpi_per_task(
    t: PanelTables, policy: Policy | None = None, res: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Effective tokens per task (agents) or per invocation (chat, rag), judged by the policy's
    ``[kpis.workload]`` band of the class when it gives one (``band_source`` "policy"), else by
    the eight-KPI framework's (``band_source`` "framework"). ``res``: the ``workload`` report
    of the panel's window with those bands, when the caller computed it (``kpis`` runs it
    beside the other KPIs, ``panel_workload``)."""
    own = workload_bands(policy)
    if res is None:
        res = panel_workload(t.ctx, t.period.window, policy)
    metrics = []
    for c in res["classes"]:
        if c["band"] is None:
            continue
        key = (
            "effective_tokens_per_task"
            if c["band_unit"] == "task"
            else ("effective_tokens_per_invocation")
        )
        metrics.append(
            metric(
                f"{c['workload']}_effective_tokens",
                f"{c['workload']}: effective tokens per "
                f"{'task' if c['band_unit'] == 'task' else 'invocation'}",
                c[key],
                "tokens",
                c["band"],
                c["status"],
                alarm=c["alarm"],
                cost_per_task=c["cost_per_task"],
                invocations_per_task=c["invocations_per_task"],
                tasks=c["tasks"],
                band_source="policy" if c["workload"] in own else "framework",
            )
        )
    return kpi("per_task_cost", "Per-task cost by workload class", metrics)
