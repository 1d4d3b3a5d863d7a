"""The price lookups of the guard's hot path, shared by the gateway and the SDK.

``PriceBook.resolve`` costs about a millisecond (genai-prices resolves the model each time); a
guarded call needs a price twice (its reservation, then its settlement). ``PriceCache`` resolves
each (provider, model, service tier) once per window of a constant price and does the
multiplication itself (``ModelPrice.cost``, the formula ``PriceBook.price`` uses):

- a lookup is *at a time* (default: the cache's clock, now): a price is kept for
  ``[valid_from, valid_until)``, its window in the book, and at most ``ttl`` (an hour) after it
  was resolved, so a dated price (an operator ``[[model]]`` entry with ``effective_from``, a
  genai-prices change, a time-of-day price) applies from its first instant in a long-running
  process, and a lookup at an earlier time (a call settled after the boundary) still gets the
  price of its own time;
- no price (an unknown model, a tier billed by contract, an unknown tier) is ``None``, kept
  until the next instant the model's price may change (``PriceBook.change_points``) or ``ttl``;
- ``reservation`` is the price a call is reserved at: the tier asked for, else the standard
  price (never $0 for a tier the book leaves unpriced: the call is settled at what was
  reserved);
- thread-safe: a hit reads one dict entry (atomic); a miss resolves under a lock, so the SDK's
  threads and the gateway's event loop share one cache without resolving a key twice at once.
  A client can name any model: past ``max_entries`` keys the cache starts again empty.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tailguard.pricing._book import ModelPrice, PriceBook

_UTC = dt.UTC
_NANO = Decimal("1e-9")
_ZERO = Decimal(0)
_MIN = dt.datetime.min.replace(tzinfo=_UTC)
_MAX = dt.datetime.max.replace(tzinfo=_UTC)
#: one cached lookup: (price or None, first instant it holds, first instant it no longer does)
_Entry = tuple["ModelPrice | None", dt.datetime, dt.datetime]


def _system_now() -> dt.datetime:
    return dt.datetime.now(_UTC)


class PriceCache:
    """``ModelPrice`` lookups by (provider, model, tier) at a time, cached per price window.

    ``book``: a ``PriceBook`` (``None``: every price is ``None``). ``clock``: the time of a
    lookup without ``at`` (an aware ``datetime``; tests inject one). ``ttl``: the longest a
    resolved price is kept.
    """

    __slots__ = ("_entries", "_lock", "book", "clock", "max_entries", "ttl")

    def __init__(
        self,
        book: PriceBook | None,
        *,
        clock: Callable[[], dt.datetime] | None = None,
        ttl: dt.timedelta = dt.timedelta(hours=1),
        max_entries: int = 10_000,
    ) -> None:
        self.book = book
        self.clock = clock or _system_now
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str, str | None], _Entry] = {}
        self._lock = threading.Lock()

    def price(
        self, provider: str, model: str, tier: str | None = None, *, at: dt.datetime | None = None
    ) -> ModelPrice | None:
        """The price in force at ``at`` (default: the clock) at a service ``tier`` (None:
        standard); ``None`` when there is none."""
        if at is None:
            at = self.clock()
        k = (provider, model, tier)
        hit = self._entries.get(k)
        if hit is not None and hit[1] <= at < hit[2]:
            return hit[0]
        with self._lock:
            hit = self._entries.get(k)  # another thread may have resolved it meanwhile
            if hit is not None and hit[1] <= at < hit[2]:
                return hit[0]
            entry = self._resolve(provider, model, tier, at)
            if len(self._entries) >= self.max_entries:
                self._entries = {}
            self._entries[k] = entry
        return entry[0]

    def reservation(
        self, provider: str, model: str, tier: str | None = None, *, at: dt.datetime | None = None
    ) -> ModelPrice | None:
        """The price a call asking for ``tier`` is reserved at: that tier's, else the standard
        one (a tier the book leaves unpriced, such as a contract tier without an operator
        entry, still reserves the standard price, never $0)."""
        if at is None:
            at = self.clock()
        mp = self.price(provider, model, tier, at=at)
        if mp is None and tier is not None:
            mp = self.price(provider, model, None, at=at)
        return mp

    def reservation_usd(
        self,
        provider: str,
        model: str,
        tier: str | None = None,
        *,
        input_tokens: int,
        output_tokens: int,
        at: dt.datetime | None = None,
    ) -> Decimal:
        """The worst case a call is reserved at, to the nano-dollar: ``input_tokens`` and
        ``output_tokens`` at ``reservation``'s price; $0 without one (an unknown model: token
        limits still apply)."""
        mp = self.reservation(provider, model, tier, at=at)
        if mp is None:
            return _ZERO
        return mp.cost(input_tokens=input_tokens, output_tokens=output_tokens).quantize(_NANO)

    def clear(self) -> None:
        """Forget every cached price (after the book changed)."""
        with self._lock:
            self._entries = {}

    def _resolve(self, provider: str, model: str, tier: str | None, at: dt.datetime) -> _Entry:
        book = self.book
        cap = at + self.ttl
        if book is None:
            return None, at, cap
        try:
            mp = book.resolve(model, provider=provider, at=at, service_tier=tier)
        except Exception:
            mp = None  # a model the book cannot resolve: no dollars, token limits still apply
        if mp is not None:
            until = mp.valid_until
            start = mp.valid_from or _MIN
            return mp, start, cap if until is None or until > cap else until
        # no price: it holds between the change points around ``at`` (an operator entry for
        # the tier may start at the next one)
        try:
            points = book.change_points(
                model, provider=provider, start=at, end=at, service_tier=tier
            )
        except Exception:
            points = []
        start = max((p for p in points if p <= at), default=_MIN)
        until = min((p for p in points if p > at), default=cap)
        return None, start, min(until, cap)
