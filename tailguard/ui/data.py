"""What each dashboard page shows, as one dict: the page's JSON twin under ``/api``.

Each function takes the dashboard's ``Source`` (the ledger, the guard policy, the diagnosis
config) and the page's query parameters (``Query``), and returns the payload that both the HTML
page and its ``/api`` twin render. Every figure is the return value of the library call the CLI
makes for the same question (``customer_report`` for ``report customers``, ``concentration`` over
``entity_totals`` for ``concentration``, ``kpis``, ``anomalies``, ``outcomes``, ``diagnose``,
``renewal``, ``headline`` for the demo's block), so ``/api/customers`` is byte for byte
``tailguard report customers --json`` for the same ledger and parameters. The only figures of
our own are the day-by-day series of ``tailguard.ui.series``.

Two small caches, both keyed by the ledger's content (its live segment list, and the mtimes of
the customers file and the invoice allocations: an ingest, a compaction, a customers import or a
``reconcile --allocate`` changes the key, so nothing stale is ever served): the per-customer
table of a window (``Source.customer_table``: the rows, and their filter and rank columns in an
in-memory DuckDB table, ``tailguard.ui.table``), which sorting, filtering and paging the
customers page query in SQL instead of re-aggregating the ledger on every click; and each
page's payload for its
query (``Source.cached``), so a page opened twice, or by two people, is computed once. A ledger
is append-only between those changes, so a cached payload is the payload.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tailguard.analytics.context import QueryContext, start
from tailguard.analytics.period import Window, is_given, window
from tailguard.errors import ArgumentError, NoDataError
from tailguard.ledger import Ledger
from tailguard.ui.table import CustomerTable

__all__ = [
    "PAGES",
    "Query",
    "Source",
    "anomalies_page",
    "customer_page",
    "customers_page",
    "outcomes_page",
    "overview_page",
    "tail_page",
    "unknown_customer",
]

#: idle connections kept per ledger content
POOL = 4
#: the windows whose customers table is kept (least recently used dropped first)
MAX_TABLES = 8
#: rows per page of the customers table: the default and the most one page may ask for
PER_PAGE = 50
MAX_PER_PAGE = 1000
#: the KPIs of the anomalies-and-guard page (the panel's tier budget and routing rates)
GUARD_KPIS = ("tier_budget_utilization", "overage_routing_rate", "soft_cap_degradation_rate")


@dataclass
class Source:
    """What the dashboard reads: a ledger, and the optional policy and diagnosis config."""

    ledger: Ledger
    policy: Any = None
    diagnose_config: Any = None
    _tables: OrderedDict[tuple[Any, ...], CustomerTable] = field(
        default_factory=OrderedDict, repr=False
    )
    _db: Any = field(default=None, repr=False)
    _pages: OrderedDict[tuple[Any, ...], Any] = field(default_factory=OrderedDict, repr=False)
    _pool: list[Any] = field(default_factory=list, repr=False)
    _pool_version: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: page payloads kept (least recently used dropped first)
    max_pages: int = 64
    #: False: compute every request afresh (the "computed" columns of bench/bench_ui.py)
    cache: bool = True

    def version(self) -> tuple[Any, ...]:
        """What identifies the ledger's content: its live segments, customers file and
        allocations."""
        own = getattr(self.ledger, "content_version", None)
        if own is not None:  # a ClickHouse ledger has no segment files (docs/scale.md)
            return tuple(own())
        files = tuple(str(p) for p in self.ledger.segment_files())
        # besides the segments: the customers file and the invoice allocations (reconcile
        # --allocate writes them), both read into the per-customer rows
        side = [self.ledger.path / "customers.parquet"]
        side += sorted((self.ledger.path / "allocations").glob("*.parquet"))
        stamps = tuple((p.name, os.stat(p).st_mtime_ns) for p in side if p.exists())
        return files, stamps

    def cached(self, name: str, args: tuple[Any, ...], compute: Any) -> Any:
        """``compute()``, or what it returned for the same page, arguments and ledger content
        (module docstring). Errors are not cached."""
        if not self.cache:
            return compute()
        key = (name, args, self.version())
        with self._lock:
            if key in self._pages:
                self._pages.move_to_end(key)
                return self._pages[key]
        value = compute()
        with self._lock:
            self._pages[key] = value
            while len(self._pages) > self.max_pages:
                self._pages.popitem(last=False)
        return value

    @contextmanager
    def open(self) -> Iterator[QueryContext]:
        """One query context for everything a page asks, on a connection from a small pool kept
        per ledger content: opening one lists the segments and builds the views (~0.15 s a
        page saved). A connection serves one request at a time (reports make temp tables); a
        new segment changes ``version()``, and the old connections are closed as they come
        back."""
        from tailguard.ledger import Ledger

        if type(self.ledger) is not Ledger:  # another engine's ledger: its own connection
            with QueryContext.open(self.ledger) as ctx:
                yield ctx
            return
        version = self.version()
        with self._lock:
            if self._pool_version != version:
                stale, self._pool, self._pool_version = self._pool, [], version
            else:
                stale = []
            con = self._pool.pop() if self._pool else None
        for old in stale:
            old.close()
        if con is None:  # read-only: a segment without its roll-up is summed inline, not repaired
            con = self.ledger.connect(repair=False)
        try:
            yield QueryContext.wrap(con)
        finally:
            with self._lock:
                keep = self._pool_version == version and len(self._pool) < POOL
                if keep:
                    self._pool.append(con)
            if not keep:
                con.close()

    def _database(self) -> Any:
        """The in-memory DuckDB database the customers tables live in (one per Source)."""
        with self._lock:
            if self._db is None:
                import duckdb

                self._db = duckdb.connect(":memory:")
            return self._db

    def customer_table(self, win: Window, ctx: QueryContext | None = None) -> CustomerTable:
        """The window's per-customer table (``customer_report``'s rows, and their filter and
        rank columns in DuckDB: ``tailguard.ui.table``), cached (module docstring)."""
        from tailguard.analytics.report import customer_report
        from tailguard.ui.table import CustomerTable

        if ctx is None:
            with self.open() as own:
                return self.customer_table(win, own)
        key: tuple[Any, ...] = (win, self.version())
        if self.cache:
            with self._lock:
                table = self._tables.get(key)
                if table is not None:
                    self._tables.move_to_end(key)
                    return table
        else:  # computed afresh each time: a key of its own, dropped as others come
            key = (win, object())
        rows = customer_report(ctx, window=win)
        table = CustomerTable(self._database(), rows, _statuses(rows))
        with self._lock:
            other = self._tables.get(key)  # another request built the same window meanwhile
            if other is not None:
                table, old = other, [table]
            else:
                self._tables[key] = table
                old = []
            # the tables of an older ledger content are never asked again: free them now
            for k in [k for k in self._tables if k[1] != key[1]]:
                old.append(self._tables.pop(k))
            while len(self._tables) > MAX_TABLES:
                old.append(self._tables.popitem(last=False)[1])
        for t in old:
            t.drop()
        return table

    def customer_rows(
        self, win: Window, sort: str = "cost_usd", ctx: QueryContext | None = None
    ) -> list[dict[str, Any]]:
        """``customer_report(ledger, window=win, sort=sort)``, from the cached table."""
        return self.customer_table(win, ctx).select(sort)[0]


def _text(params: Mapping[str, str], name: str) -> str | None:
    v = params.get(name)
    return v.strip() if v and v.strip() else None


def _int(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = _text(params, name)
    if raw is None:
        return default
    try:
        v = int(raw)
    except ValueError:
        raise ArgumentError(name, f"{name} must be a whole number, not {raw!r}") from None
    if not lo <= v <= hi:
        raise ArgumentError(name, f"{name} must be between {lo} and {hi}, not {v}")
    return v


def _date(params: Mapping[str, str], name: str) -> dt.date | None:
    raw = _text(params, name)
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ArgumentError(name, f"{name} {raw!r} is not a date (YYYY-MM-DD)") from None


#: the query parameters a page understands (``token``: the access token, read by the gate)
PARAMS = frozenset(
    [
        "period",
        "from",
        "to",
        "as_of",
        "day",
        "threshold",
        "by",
        "sort",
        "order",
        "limit",
        "tier",
        "segment",
        "shape",
        "status",
        "page",
        "per",
        "token",
    ]
)


@dataclass(frozen=True)
class Query:
    """A page's state, all of it in the query string (so a URL pastes into a review document).

    The names are the CLI's flags without dashes: ``period``, ``from``, ``to``, ``as_of``,
    ``day``, ``threshold``, ``by``, ``sort``, ``order``, ``limit``; the customers table adds
    ``tier``, ``segment``, ``shape``, ``status``, ``page``, ``per``. A bad value raises
    ``ArgumentError`` naming the parameter (the page answers 400 with the reason)."""

    period: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    as_of: dt.date | None = None
    day: dt.date | None = None
    threshold: float = 5.0
    by: str = "customer"
    sort: str = "cost_usd"
    order: str = "desc"
    limit: int | None = None
    tier: str | None = None
    segment: str | None = None
    shape: str | None = None
    status: str | None = None
    page: int | None = None
    per: int | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> Query:
        unknown = sorted(set(params) - PARAMS)
        if unknown:  # a typo ("perod") must not silently show every day
            raise ArgumentError(
                unknown[0], f"unknown parameter {unknown[0]!r}; known: {', '.join(sorted(PARAMS))}"
            )
        q = cls(
            period=_text(params, "period"),
            date_from=_text(params, "from"),
            date_to=_text(params, "to"),
            as_of=_date(params, "as_of"),
            day=_date(params, "day"),
            by=_text(params, "by") or "customer",
            sort=_text(params, "sort") or "cost_usd",
            order=_text(params, "order") or "desc",
            limit=_int(params, "limit", 0, 1, 10**9) or None,
            tier=_text(params, "tier"),
            segment=_text(params, "segment"),
            shape=_text(params, "shape"),
            status=_text(params, "status"),
            page=_int(params, "page", 0, 1, 10**9) or None,
            per=_int(params, "per", 0, 1, MAX_PER_PAGE) or None,
        )
        raw = _text(params, "threshold")
        if raw is not None:
            try:
                thr = float(raw)
            except ValueError:
                raise ArgumentError("threshold", f"threshold {raw!r} is not a number") from None
            if not thr > 0:
                raise ArgumentError("threshold", "threshold must be > 0")
            q = cls(**{**q.__dict__, "threshold": thr})
        if q.order not in ("asc", "desc"):
            raise ArgumentError("order", f"order must be asc or desc, not {q.order!r}")
        q.window()  # a bad period or date is refused before anything is read
        return q

    def window(self) -> Window:
        """The window of ``period`` / ``from`` / ``to`` (the CLI's ``window``)."""
        return window(self.period, self.date_from, self.date_to)


def _kpis(src: Source, q: Query) -> dict[str, Any]:
    """The eight-KPI panel, as ``tailguard kpis --json`` (``period``, ``as_of``, the policy).

    Like the CLI, a "no policy" note names the flag that gives one: ``tailguard ui`` takes the
    same ``--policy FILE``."""
    from tailguard.analytics import kpis as k

    with src.open() as ctx:
        rep = k.kpis(ctx, period=q.period, as_of=q.as_of, policy=src.policy)
    no_policy = getattr(k, "NO_POLICY", None)
    for kpi in rep["kpis"]:
        for m in kpi["metrics"]:
            if no_policy is not None and m.get("note") == no_policy:
                m["note"] = f"{no_policy}: give --policy FILE"
    return rep


@contextmanager
def _beside(fn: Callable[..., Any], *args: Any) -> Iterator[Callable[[], Any]]:
    """``start(fn(*args))`` (``tailguard.analytics.context``) for a ``with`` block that waits
    for it on the way out, whatever happens inside (no report is left running on a connection
    after the page is done)."""
    result = start(lambda: fn(*args))
    try:
        yield result
    finally:
        with suppress(Exception):  # its error is the caller's to see through result()
            result()


def overview_page(src: Source, q: Query) -> dict[str, Any]:
    """The demo's "what the average hides" block (``headline`` over the per-customer rows),
    spend per day by cost component, and the eight KPIs (``kpis`` as the CLI calls it)."""
    from tailguard.analytics.headline import headline
    from tailguard.analytics.margins import overage_billed
    from tailguard.ui.series import daily_spend

    win = q.window()
    with _beside(_kpis, src, q) as panel_of:  # the panel on its own connection, meanwhile
        with src.open() as ctx:
            rows = src.customer_rows(win, ctx=ctx)
            head = headline(rows, overage=overage_billed(ctx, win))
            daily = daily_spend(ctx, win, by="kind")
        try:
            panel: dict[str, Any] | None = panel_of()
            panel_error = None
        except NoDataError as exc:  # a window outside the panel's month: say so, keep the page
            panel, panel_error = None, str(exc)
    return {
        "window": head["window"],
        "headline": head,
        "daily_spend": daily,
        "kpis": panel,
        "kpis_error": panel_error,
    }


def tail_page(src: Source, q: Query) -> dict[str, Any]:
    """``tailguard concentration --ledger L --by BY [--period P | --from --to] --json``: the
    same calls (``totals_window``, ``entity_totals``, ``concentration``), the same payload."""
    from tailguard.analytics.concentration import concentration
    from tailguard.analytics.totals import BY, entity_totals, totals_window

    if q.by not in BY:
        raise ArgumentError("by", f"by must be one of {', '.join(BY)}, not {q.by!r}")
    win = q.window()
    with src.open() as ctx:
        stated = totals_window(ctx, win)
        ids, values = entity_totals(ctx, by=q.by, window=win)
    res = concentration(values, ids)
    res["window"] = stated.stated()
    return res


def _statuses(rows: list[dict[str, Any]]) -> dict[str, str]:
    from tailguard.analytics.margins import margin_status

    return {r["customer_id"]: margin_status(r["segment"], r["cost_pct_of_mrr"]) for r in rows}


def diagnosis_population(src: Source, ctx: QueryContext, win: Window) -> Any:
    """The diagnosis's population pass over ``win`` (``diagnose.population``: every customer's
    shape metrics, the medians, the tail), kept per ledger content like a page (``cached``):
    the shapes filter of the customers page and every customer page of the same window share
    one pass, so a customer page after the first costs its own evidence only (issue 12)."""
    from tailguard.analytics.diagnose import DiagnoseConfig, population

    cfg = src.diagnose_config or DiagnoseConfig()
    return src.cached(
        "diagnose-population", (win, repr(cfg)), lambda: population(ctx, win, config=cfg)
    )


def customers_page(src: Source, q: Query) -> dict[str, Any]:
    """The per-customer table (``customer_report``: ``report customers``' rows), filtered,
    sorted and paged in SQL over the window's cached table (``tailguard.ui.table``). ``rows``
    is exactly what ``tailguard report customers --sort S --limit N --json`` prints when no
    filter or page is given. ``status`` is the margin band of ``margins`` (``margin_status``);
    ``shape`` keeps the customers the diagnosis puts in the tail with that shape
    (``diagnose``)."""
    from tailguard.analytics.customers import CUSTOMER_FIELDS

    if q.sort not in CUSTOMER_FIELDS:
        raise ArgumentError(
            "sort", f"unknown field {q.sort!r}; one of {', '.join(CUSTOMER_FIELDS)}"
        )
    win = q.window()
    table = src.customer_table(win)
    shapes = None
    if q.shape:
        from tailguard.analytics.diagnose import diagnose

        def find() -> list[dict[str, Any]]:
            with src.open() as ctx:
                pop = diagnosis_population(src, ctx, win)
                return diagnose(ctx, win, config=src.diagnose_config, population=pop)

        shapes = table.shapes(find)
    per = q.per or (PER_PAGE if q.page else None)
    page = q.page or 1
    shown, total = table.select(
        q.sort,
        descending=q.order == "desc",
        where={"tier": q.tier, "segment": q.segment, "status": q.status},
        shape=q.shape,
        shapes_table=shapes,
        limit=q.limit,
        offset=(page - 1) * per if per else 0,
        count=per,
    )
    return {
        "rows": shown,
        "statuses": {r["customer_id"]: table.statuses[r["customer_id"]] for r in shown},
        "total": total,
        "page": page,
        "per": per,
        "pages": max(1, -(-total // per)) if per else 1,
        "tiers": table.tiers,
        "segments": table.segments,
        "window": table.window(),
    }


def _known(ctx: QueryContext, customer: str) -> bool:
    """A customers row or an event names ``customer``."""
    hit = ctx.execute(
        "SELECT 1 FROM customers WHERE customer_id = ? UNION ALL "
        "SELECT 1 FROM (SELECT 1 FROM events WHERE customer_id = ? LIMIT 1)",
        [customer, customer],
    ).fetchone()
    return hit is not None


def unknown_customer(customer: str) -> NoDataError:
    """No customers row and no event names ``customer``: a ``NoDataError`` (the page answers
    404), worded apart from a known customer with no events in the window."""
    return NoDataError(f"no customer {customer!r} in this ledger", customer=customer)


def customer_page(src: Source, customer: str, q: Query) -> dict[str, Any]:
    """One tenant: its row of the per-customer table, daily cost by component and by model,
    cost per successful task by week, the users and features behind it, its diagnosis
    (``diagnose --customer``), its margin against the segment's thresholds month by month (the
    renewal's months through ``margin_figures`` and ``margin_status``), its guard events, and
    the renewal one-pager's figures (``renewal``)."""
    from tailguard.analytics.customers import margin_figures
    from tailguard.analytics.diagnose import diagnose
    from tailguard.analytics.margins import THRESHOLDS, margin_status
    from tailguard.analytics.period import bounded, require_events
    from tailguard.analytics.renewal import renewal
    from tailguard.ui import series

    def diagnosis() -> list[dict[str, Any]]:
        with src.open() as own:
            pop = diagnosis_population(src, own, win)
            found = diagnose(
                own, win, config=src.diagnose_config, customer=customer, population=pop
            )
        return [d for d in found if d["customer_id"] == customer]

    win = q.window()
    with src.open() as ctx:
        if not _known(ctx, customer):
            raise unknown_customer(customer)
        require_events(ctx, win, customer=customer)
        diag_of = start(diagnosis)  # the slowest call, on its own connection, meanwhile
        stated = bounded(ctx, win)
        row = src.customer_table(win, ctx).row(customer)
        if row is None:  # not after require_events; a ledger that changed in between
            raise NoDataError(f"no events of {customer!r} in this window", customer=customer)
        ren = renewal(ctx, customer, as_of=q.as_of)
        by_kind = series.daily_spend(ctx, win, customer=customer)
        by_model = series.daily_spend(ctx, win, by="model", customer=customer)
        weekly = series.customer_weekly(ctx, win, customer)
        users = series.customer_breakdown(ctx, win, customer, by="user")
        features = series.customer_breakdown(ctx, win, customer, by="feature")
        guard = series.guard_events(ctx, win, customer)
    diag = diag_of()
    th = THRESHOLDS.get(row["segment"] or "")
    months = []
    for m in ren["months"][-6:]:
        if m["cost_usd"] is None:
            continue
        fig = margin_figures(m["cost_usd"], ren.get("mrr_usd") or row["mrr_usd"], Decimal(1))
        months.append(
            {
                "month": m["month"],
                "cost_usd": m["cost_usd"],
                "partial": m.get("partial"),
                **fig,
                "status": margin_status(row["segment"], fig["cost_pct_of_mrr"]),
            }
        )
    return {
        "customer": row,
        "window": stated.stated() if not is_given(win) else win.stated(),
        "daily_by_component": by_kind,
        "daily_by_model": by_model,
        "weekly": weekly,
        "users": users,
        "features": features,
        "diagnosis": diag[0] if diag else None,
        "thresholds": {"target_pct": th[0], "alert_pct": th[1]} if th else None,
        "margin_months": months,
        "guard_events": guard,
        "renewal": ren,
    }


def outcomes_page(src: Source, q: Query) -> dict[str, Any]:
    """``tailguard outcomes --json``: cost per resolved task against cost per call by week,
    and the spend of each outcome (the failure modes) with its share."""
    from tailguard.analytics.outcomes import outcomes

    with src.open() as ctx:
        return outcomes(ctx, q.window())


def anomalies_page(src: Source, q: Query) -> dict[str, Any]:
    """``scan``: ``tailguard anomalies --day D --threshold T --json``; ``panel``: the tier
    budget, overage routing and soft-cap degradation KPIs of ``tailguard kpis --json`` for the
    scan day's month as of that day (``period``, ``as_of`` when given; with no day, the month of
    the last event as of its day, which is the scan's default day)."""
    from tailguard.analytics.anomalies import anomalies

    pq = q
    if q.period is None and q.as_of is None:
        # the scan day's month as of that day; with no day, both default to the last event's
        pq = Query(as_of=q.day, period=q.day.strftime("%Y-%m")) if q.day else Query()
    with _beside(_kpis, src, pq) as panel_of:  # the panel on its own connection, meanwhile
        with src.open() as ctx:
            scan = anomalies(ctx, day=q.day, threshold=q.threshold, policy=src.policy)
        panel = panel_of()
    return {
        "scan": scan,
        "panel": {
            "period": panel["period"],
            "as_of": panel["as_of"],
            "kpis": [k for k in panel["kpis"] if k["id"] in GUARD_KPIS],
        },
    }


#: page name -> (title, path): the navigation, in order
PAGES = (
    ("overview", "Overview", "/"),
    ("tail", "Tail", "/tail"),
    ("customers", "Customers", "/customers"),
    ("outcomes", "Outcomes", "/outcomes"),
    ("anomalies", "Anomalies & guard", "/anomalies"),
)
