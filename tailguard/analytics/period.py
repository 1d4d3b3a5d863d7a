"""Report windows: ``--period YYYY-MM`` or ``--from D --to D`` (dates inclusive), in UTC."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tailguard.errors import ArgumentError

#: the average month, used to turn MRR into revenue for a window that is not a calendar month
DAYS_PER_MONTH = Decimal("30.436875")  # 365.2425 / 12


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


def months_covered(con: Any, win: Window) -> Decimal | None:
    """The months of MRR a window earns: ``win.months()``, or for an open window the UTC days
    the data in it spans (both ends counted) / DAYS_PER_MONTH, as ``report customers`` does."""
    months = win.months()
    if months is not None:
        return months
    where, params = win.sql()
    row = con.execute(
        "SELECT CAST(CAST(min(ts) AS DATE) AS VARCHAR), CAST(CAST(max(ts) AS DATE) AS VARCHAR) "
        f"FROM events WHERE {where}",
        params,
    ).fetchall()[0]
    if row[0] is None:
        return None
    days = (dt.date.fromisoformat(row[1]) - dt.date.fromisoformat(row[0])).days + 1
    return Decimal(days) / DAYS_PER_MONTH


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
