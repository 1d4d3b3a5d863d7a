"""Report windows, and the one rule for the window a report uses when none is given.

A window is a half-open UTC interval ``[start, end)`` of whole days. It comes either from the
flags (``--period YYYY-MM``, or ``--from D --to D`` with ``--to`` inclusive: ``window()``) or,
when the flags give none, from the default-window rule below: **one function per question**, so
every command answers the same question over the same days, and the query layer can later take
these functions over whole.

- ``decide`` (one customer: keep or let go): the 3 calendar months ending with the month of
  **that customer's** last event, clipped to the ledger's days (``customer_quarter``). Why: the
  question is about that customer; another customer's newer traffic must not move its window
  onto months it has no events in.
- ``renewal`` (one customer's year): the 12 calendar months ending with the month of that
  customer's last event, clipped to the ledger's days (``customer_year``). Why: the same.
- ``report customers``, ``margins``, ``diagnose`` (all customers): every day the ledger holds
  events (``ledger_span``, ``bounded``). Why: a table over all customers has no one customer's
  clock to follow.
- ``anomalies``, ``digest`` (one day, or the week / quarter ending it): the ledger's last
  event's day (``scan_day``). Why: the newest view there is; a day with no events is refused.
- ``kpis``: the month of the ledger's last event, judged up to that day
  (``tailguard.analytics.kpis.panel_period``).

docs/reports.md has the same table.

**No data is not zero.** A report asked about a customer, window or day that holds none of the
events it reads raises ``NoDataError`` (window used, the customer's or ledger's last event)
rather than computing from zeros: a customer with no events in a quarter is not "costing
nothing", it is not measured (``require_events``).

**Every output states its window.** ``Window.stated()`` is the ``{"start", "end"}`` object
every JSON report carries (``end`` is the last day *included*, so ``--from START --to END``
reproduces it) and ``Window.label()`` the text every table title carries. An open window is
first bounded to the days its data spans (``bounded``), the same days its revenue is earned
over.

Revenue: ``Window.months()`` = exactly 1 for a calendar month (``--period``), else days /
30.436875 (the average Gregorian month, 365.2425 / 12): one rule for every report, so cost,
revenue, cost % of MRR and margin agree across them for the same window. The wall clock is
never read: the ledger's own events date every default.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tailguard.errors import ArgumentError, NoDataError

#: the average month, used to turn MRR into revenue for a window that is not a calendar month
DAYS_PER_MONTH = Decimal("30.436875")  # 365.2425 / 12

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """A half-open UTC window [start, end); either bound may be open (None)."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    #: True when the window is exactly one calendar month (revenue = MRR)
    calendar_month: bool = False

    def months(self) -> Decimal | None:
        """How many months of MRR this window earns; None when unbounded."""
        if self.calendar_month:
            return Decimal(1)
        if self.start is None or self.end is None:
            return None
        days = Decimal((self.end - self.start).total_seconds()) / Decimal(86400)
        return days / DAYS_PER_MONTH

    def sql(self, column: str = "ts") -> tuple[str, list[dt.datetime]]:
        """A WHERE fragment and its parameters."""
        parts, params = [], []
        if self.start is not None:
            parts.append(f"{column} >= ?")
            params.append(self.start)
        if self.end is not None:
            parts.append(f"{column} < ?")
            params.append(self.end)
        return (" AND ".join(parts) or "TRUE"), params

    @property
    def first_day(self) -> dt.date | None:
        """The first UTC day in the window (None when open)."""
        return None if self.start is None else self.start.astimezone(dt.UTC).date()

    @property
    def last_day(self) -> dt.date | None:
        """The last UTC day in the window, inclusive (None when open)."""
        if self.end is None:
            return None
        return (self.end.astimezone(dt.UTC) - dt.timedelta(microseconds=1)).date()

    def stated(self) -> dict[str, dt.date | None]:
        """``{"start": first day, "end": last day (inclusive)}``: the ``window`` of every JSON
        report (``None`` for an open side)."""
        return {"start": self.first_day, "end": self.last_day}

    def label(self) -> str:
        """``2026-01-01 .. 2026-03-31`` (``…`` for an open side): for table titles."""
        a, b = self.first_day, self.last_day
        return f"{a or '…'} .. {b or '…'}"


def day_window(first: dt.date, last: dt.date, *, calendar_month: bool = False) -> Window:
    """The window of the whole UTC days ``first`` .. ``last`` (inclusive)."""
    return Window(_utc(first), _utc(last) + ONE_DAY, calendar_month=calendar_month)


def _as_day(ts: dt.datetime) -> dt.date:
    return ts.astimezone(dt.UTC).date()


def event_span(
    con: Any, *, customer: str | None = None, win: Window | None = None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """(first, last) event timestamp of the ledger, or of one ``customer``, within ``win``.
    The whole ledger's span comes from a ``QueryContext``'s kept answer when given one."""
    if customer is None and (win is None or not is_given(win)) and hasattr(con, "span"):
        return con.span()  # type: ignore[no-any-return]
    where, params = (win or Window()).sql()
    if customer is not None:
        where += " AND customer_id = ?"
        params = [*params, customer]  # type: ignore[list-item]
    row = con.execute(f"SELECT min(ts), max(ts) FROM events WHERE {where}", params).fetchall()
    return row[0][0], row[0][1]


def ledger_span(con: Any) -> Window:
    """The days the ledger holds events (first .. last event's UTC day): the default window of
    the all-customer reports. ``NoDataError`` on an empty ledger."""
    lo, hi = event_span(con)
    if lo is None or hi is None:
        raise NoDataError("the ledger has no events")
    return day_window(_as_day(lo), _as_day(hi))


def covered(con: Any, win: Window) -> Window | None:
    """``win`` with an open side closed at the UTC day of the first / last event in it (a
    bounded window is returned as is); None when an open window holds no events. A side the
    flags gave is kept: ``--from`` Jan 1 earns revenue from Jan 1 even if the first event is on
    the 5th."""
    if win.start is not None and win.end is not None:
        return win
    lo, hi = event_span(con, win=win)
    return close(win, _as_day(lo) if lo else None, _as_day(hi) if hi else None)


def close(win: Window, first: dt.date | None, last: dt.date | None) -> Window | None:
    """``win`` with its open sides closed at ``first`` / ``last`` (the UTC days of the first and
    last event in it, known to the caller); None when a side is open and there is no event."""
    if win.start is not None and win.end is not None:
        return win
    if first is None or last is None:
        return None
    start = win.start if win.start is not None else _utc(first)
    end = win.end if win.end is not None else _utc(last) + ONE_DAY
    return Window(start, end, calendar_month=win.calendar_month)


def bounded(con: Any, win: Window) -> Window:
    """``covered(con, win)``, and ``NoDataError`` when the window holds no events: a report
    over it would only compute from zeros."""
    require_events(con, win)
    out = covered(con, win)
    assert out is not None  # require_events saw at least one event
    return out


def require_events(con: Any, win: Window, *, customer: str | None = None) -> None:
    """Raise ``NoDataError`` when ``win`` holds no event (of ``customer``, when given), naming
    the window and the latest event there is."""
    where, params = win.sql()
    if customer is not None:
        where += " AND customer_id = ?"
        params = [*params, customer]  # type: ignore[list-item]
    # the common case stops at the first matching row
    if con.execute(f"SELECT 1 FROM events WHERE {where} LIMIT 1", params).fetchall():
        return
    _, last = event_span(con, customer=customer)
    who = f"{customer!r} has" if customer is not None else "the ledger has"
    where = "in the ledger" if win.start is None and win.end is None else f"in {win.label()}"
    if last is None:
        if customer is not None:
            raise NoDataError(f"{who} no events {where}", window=_pair(win), customer=customer)
        raise NoDataError("the ledger has no events", window=_pair(win))
    raise NoDataError(
        f"{who} no events in {win.label()}; "
        f"{'its' if customer is not None else 'the'} last event is {last:%Y-%m-%d %H:%M} UTC",
        window=_pair(win),
        customer=customer,
        last_event=last,
    )


def _pair(win: Window) -> tuple[object, object]:
    return (win.first_day, win.last_day)


def add_months(d: dt.date, n: int) -> dt.date:
    """The first day of the month ``n`` months after ``d``'s (``n`` < 0: before): the one month
    arithmetic every report uses."""
    k = d.year * 12 + d.month - 1 + n
    return dt.date(k // 12, k % 12 + 1, 1)


def month_start(d: dt.date, back: int = 0) -> dt.date:
    """The first day of the month ``back`` months before ``d``'s."""
    return add_months(d, -back)


def month_last(d: dt.date) -> dt.date:
    """The last day of ``d``'s month."""
    return add_months(d, 1) - ONE_DAY


def quarter_start(d: dt.date) -> dt.date:
    """The first day of ``d``'s calendar quarter."""
    return dt.date(d.year, (d.month - 1) // 3 * 3 + 1, 1)


def customer_months(con: Any, customer: str, months: int, as_of: dt.date | None = None) -> Window:
    """``months`` calendar months ending with ``as_of``'s month, clipped to the days the ledger
    holds events. Default ``as_of``: **the customer's own last event's day**, never the
    ledger's (newer traffic from others must not move this customer's window off its data).

    ``NoDataError`` when the customer has no events in that window (or none at all).
    """
    lo, hi = event_span(con)
    if lo is None or hi is None:
        raise NoDataError("the ledger has no events", customer=customer)
    if as_of is None:
        _, c_hi = event_span(con, customer=customer)
        if c_hi is None:
            raise NoDataError(f"{customer!r} has no events in the ledger", customer=customer)
        as_of = _as_day(c_hi)
    first = max(month_start(as_of, months - 1), _as_day(lo))
    last = min(month_last(as_of), _as_day(hi))
    if last < first:  # as_of before the ledger's first event or long after its last
        win = day_window(month_start(as_of, months - 1), month_last(as_of))
    else:
        win = day_window(first, last)
    require_events(con, win, customer=customer)
    return win


def customer_quarter(con: Any, customer: str, as_of: dt.date | None = None) -> Window:
    """``decide``'s default: the 3 calendar months ending with the month of ``as_of`` (default:
    the customer's last event), clipped to the ledger's days (``customer_months``)."""
    return customer_months(con, customer, 3, as_of)


def customer_year(con: Any, customer: str, as_of: dt.date | None = None) -> Window:
    """``renewal``'s default: the 12 calendar months ending with the month of ``as_of``
    (default: the customer's last event), clipped to the ledger's days."""
    return customer_months(con, customer, 12, as_of)


def scan_day(con: Any, day: dt.date | None = None) -> dt.date:
    """The day ``anomalies`` and ``digest daily`` scan: ``day``, default the ledger's last
    event's UTC day. ``NoDataError`` when that day holds no events (nothing was measured)."""
    if day is None:
        return ledger_span(con).last_day  # type: ignore[return-value]
    require_events(con, day_window(day, day))
    return day


def _date(s: str, argument: str) -> dt.date:
    try:
        return dt.date.fromisoformat(s)
    except ValueError:
        raise ArgumentError(argument, f"{s!r} is not a date (YYYY-MM-DD)") from None


def _utc(d: dt.date) -> dt.datetime:
    return dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC)


def window(
    period: str | None = None, date_from: str | None = None, date_to: str | None = None
) -> Window:
    """Build a window from the CLI flags (a period excludes --from/--to)."""
    if period and (date_from or date_to):
        raise ArgumentError("period", "a month and a date range exclude each other: give one")
    if period:
        try:
            y, m = (int(x) for x in period.split("-"))
            start = dt.datetime(y, m, 1, tzinfo=dt.UTC)
        except ValueError:
            raise ArgumentError("period", f"{period!r} is not a month (YYYY-MM)") from None
        end = dt.datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=dt.UTC)
        return Window(start, end, calendar_month=True)
    start = _utc(_date(date_from, "date_from")) if date_from else None
    end = _utc(_date(date_to, "date_to")) + dt.timedelta(days=1) if date_to else None
    if start and end and end <= start:
        raise ArgumentError("date_to", f"{date_to} is before the first day, {date_from}")
    return Window(start, end)


def is_given(win: Window) -> bool:
    """True when the flags named a window (either side)."""
    return win.start is not None or win.end is not None
