"""Failover: what the guard does while the shared store (Redis) is down, and how it catches up.

``fail_closed`` denies (rule ``guard_unavailable``). ``fail_open`` decides on a local in-process
store whose budget counters start from the spend this process **last saw** in the shared store
(every answer of the shared store is remembered per budget). A process that never saw a
customer's capped budget this period has nothing to start from, so it refuses that customer's
calls (``guard_unavailable``) rather than start from zero: starting from zero is how two
replicas spent $0.0158 against a $0.01 cap.
The figure seen is spent + reserved: a call reserved on the shared store and settled during
the outage gives its reservation back locally (when it was live at the last look) and adds
its actual cost, as the shared store does with the replay.

**Bound** (docs/guard.md): with N processes, settled spend past a hard limit during an outage is
at most Σ over processes of (limit − what that process last saw) − the headroom at the start of
the outage: (N − 1) × that headroom when every process had seen the latest spend, and never more
than N × the limit.

**Catching up without double counting.** A store call that timed out may still run later (a
hung Redis runs its queued commands when it resumes), so nothing sent is assumed lost or done:

- every settle carries a **settle id** (the reservation's id); the shared store applies an id at
  most once (``settle.lua`` keeps the ids it applied for an hour of Redis' clock), so a settle that
  failed is **replayed** with the same id when the store answers again;
- spend settled on the local store is summed per customer and sent once, under a fresh id kept
  until it is acknowledged;
- a check that failed may have reserved: its reservation is released at recovery (a release
  refunds only a reservation that is still live), and expires in any case.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tailguard.guard.deciding import Decider
from tailguard.guard.planning import Prep
from tailguard.guard.policy import Settings
from tailguard.guard.stores.base import DENY, OK, CheckResult, Plan, SettleItem, Store
from tailguard.guard.stores.memory import MemoryStore
from tailguard.guard.types import Decision, Reservation

log = logging.getLogger("tailguard.guard")

_MAX_SEEN = 200_000  # last-seen counters kept (a bounded cache: older ones are forgotten)
_MAX_ORPHANS = 10_000  # failed checks released at recovery (beyond: they expire by TTL)


@dataclass(slots=True)
class Replay:
    """One settle to send to the shared store, as many times as it takes, under one id."""

    res_key: str
    member: str
    items: list[SettleItem]
    settle_id: str


class Failover:
    """The outage state of one ``Guard`` in front of a shared store (thread-safe)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        decider: Decider,
        now_ms: Callable[[], int],
        id_prefix: str,
    ) -> None:
        self.store = store
        self.local = MemoryStore()
        self.down_since: float | None = None
        self._probe_s = settings.probe_interval_s
        self._next_probe = 0.0
        self._decider = decider
        self._now_ms = now_ms
        self._lock = threading.Lock()
        self._outage_recorded = False
        # budget key -> (spent + reserved last seen, its expiry, when seen: the check's now_ms)
        self._last_seen: dict[str, tuple[int, int, int]] = {}
        self._seeded: dict[str, int] = {}  # key -> when its figure seeded ``local`` was seen
        self._replay: deque[Replay] = deque()
        self._orphans: list[tuple[str, str, list[SettleItem]]] = []
        self._local_spend: dict[str, dict[str, list[int]]] = {}  # res_key -> key -> [amt, exp]
        self._ids = itertools.count()
        self._id_prefix = id_prefix

    # --- while the store answers ---------------------------------------------------------------

    def observe(self, prep: Prep, res: CheckResult) -> None:
        """Remember what the shared store said the budget holds (the fallback starts there).

        Only budgets: one key per customer and period, so the memory stays bounded by the
        customers served (task and session counters are new all the time)."""
        bi = prep.budget_index
        code, _index, used_before, _alerted = res
        if bi < len(used_before):
            seen = self._last_seen
            if len(seen) > _MAX_SEEN:
                seen.clear()
            key, _limit, amount, _on, expire_ms, *_rest = prep.caps[bi]
            used = used_before[bi] + amount if code == OK else used_before[bi]
            seen[key] = (used, expire_ms, prep.now_ms)

    # --- detecting an outage and routing -------------------------------------------------------

    def mark_down(self, exc: BaseException, failed_plan: Plan | None = None) -> bool:
        """Record an outage (a store call raised); a failed check's plan is released later.

        Only an unavailable store (a retryable error) is an outage for everyone; an error about
        one call's data is logged and counted, and the store stays in use: False."""
        if not getattr(exc, "retryable", False):
            self._decider.stats["internal_errors"] += 1
            log.error("guard store refused one call (%s); the store stays in use", exc)
            return False
        self._decider.stats["store_errors"] += 1
        with self._lock:
            first = self.down_since is None
            if first:
                self.down_since = time.monotonic()
            self._next_probe = time.monotonic() + self._probe_s
        if failed_plan is not None:
            p = failed_plan
            self.orphan(p.res_key, p.member, [SettleItem(c[0], c[2], 0, c[4]) for c in p.caps])
        if first:
            log.warning("guard store unavailable (%s); applying the policy's fail mode", exc)
        return True

    def orphan(self, res_key: str, member: str, items: list[SettleItem]) -> None:
        """A reservation that may sit in the shared store: release it at recovery."""
        with self._lock:
            if len(self._orphans) < _MAX_ORPHANS:
                self._orphans.append((res_key, member, items))
                self._owed_locked()

    def _owed_locked(self) -> None:
        """Something was queued for the store: if another thread declared it back meanwhile,
        go down again with a probe due at once, so the next check sends it (never stranded)."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            self._next_probe = 0.0

    def due(self) -> bool:
        """True when the shared store is down and a probe (the catch-up) is due now."""
        if time.monotonic() < self._next_probe:
            return False
        self._next_probe = time.monotonic() + self._probe_s
        return True

    def probe_sync(self) -> bool:
        """Send everything owed to the shared store; True when it all went (the store is back)."""
        self._start_probe()
        while (rp := self._next_replay()) is not None:
            try:
                self.store.settle(rp.res_key, rp.member, rp.items, [], self._now_ms(), rp.settle_id)
            except Exception as exc:
                if self._failed_replay(rp, exc):
                    return False
        return True

    async def probe_async(self) -> bool:
        """``probe_sync`` for asyncio."""
        self._start_probe()
        while (rp := self._next_replay()) is not None:
            try:
                await self.store.asettle(
                    rp.res_key, rp.member, rp.items, [], self._now_ms(), rp.settle_id
                )
            except Exception as exc:
                if self._failed_replay(rp, exc):
                    return False
        return True

    def _start_probe(self) -> None:
        with self._lock:
            self._queue_owed_locked()
            if not self._replay:  # nothing owed: one empty settle is the probe
                self._replay.append(Replay("", "", [], ""))

    def _queue_owed_locked(self) -> None:
        """Local spend (one replay per customer, a fresh id kept until acknowledged) and failed
        checks (released: a release refunds only a reservation that is still live)."""
        for res_key, spend in self._local_spend.items():
            items = [SettleItem(k, 0, a, e) for k, (a, e) in spend.items() if a]
            if items:
                sid = f"{self._id_prefix}-r{next(self._ids):x}"
                self._replay.append(Replay(res_key, "", items, sid))
        self._local_spend.clear()
        for res_key, member, items in self._orphans:
            self._replay.append(Replay(res_key, member, items, ""))
        self._orphans.clear()

    def _next_replay(self) -> Replay | None:
        """The next replay to send; when nothing is owed any more, the store is back (declared
        under the lock, so a settle either queued before it or goes straight to the store)."""
        with self._lock:
            if not self._replay:
                self._queue_owed_locked()
            if self._replay:
                return self._replay.popleft()
            down = self.down_since
            if down is None:  # another thread's probe declared it back already
                return None
            self.down_since = None
            self._outage_recorded = False
            self.local = MemoryStore()
            self._seeded.clear()
        self._decider.stats["resyncs"] += 1
        log.warning(
            "guard store is back after %.1f s; outage spend re-synced",
            time.monotonic() - down,
        )
        return None

    def _failed_replay(self, rp: Replay, exc: Exception) -> bool:
        """True: the store is still down (keep the replay). A replay the store refuses as bad
        (not retryable) would block recovery for ever: it is logged with its amounts and dropped."""
        if getattr(exc, "retryable", False):
            with self._lock:
                if rp.res_key or rp.items:  # the empty probe is not owed
                    self._replay.appendleft(rp)
            return True
        self._decider.stats["internal_errors"] += 1
        log.error("guard re-sync refused by the store (%s); dropped: %r", exc, rp)
        return False

    # --- deciding while down -------------------------------------------------------------------

    def degraded(self, prep: Prep) -> Decision:
        """The shared store is down: deny (fail_closed) or decide on local limits (fail_open)."""
        req, lim, plan = prep.request, prep.limits, prep
        d = self._decider
        if lim.fail_mode == "fail_closed":
            d.stats["fail_closed"] += 1
            return self._unavailable(prep)
        bcap = plan.caps[prep.budget_index]
        seen = self._last_seen
        if bcap[3] == DENY and bcap[0] not in seen:  # (key, limit, amount, on_exceed, ...)
            # never saw this budget in the shared store: starting from zero could spend the
            # whole limit again on every replica; refuse until the store answers
            d.stats["fail_closed"] += 1
            return self._unavailable(prep)
        d.stats["fail_open"] += 1
        if not self._outage_recorded:
            self._outage_recorded = True
            # one event per outage: the guarantee is degraded until the store answers
            d.event("fail_open", "store_unavailable", req, plan.now_ms, model=req.model)
        with self._lock:
            for c in plan.caps:
                self._seed_locked(c[0])
        return d.decide(prep, self.local.check(plan), local=True)

    def _unavailable(self, prep: Prep) -> Decision:
        wait = max(1, math.ceil(self._probe_s))
        return self._decider.deny(
            prep.request,
            prep.limits,
            prep.now_ms,
            "guard_unavailable",
            wait,
            "Usage limits cannot be checked right now, so this request was "
            f"not sent. Try again in {wait} seconds.",
        )

    # --- settling while down -------------------------------------------------------------------

    def settle_failed(
        self, exc: BaseException | None, r: Reservation, items: list[SettleItem]
    ) -> list[int]:
        """A settle on the shared store raised (or the store is known down: ``exc`` None): it
        may or may not have run. Count it locally (local limits see it) and replay it, same id,
        when the store answers. A settle the store refused as bad (not retryable) is logged
        with its amounts: replaying it would be refused again."""
        if exc is not None and not self.mark_down(exc):
            log.error("guard settle refused by the store, not counted there: %r", items)
            return self.local.settle("", "", items, [], self._now_ms())
        with self._lock:
            for key, reserved, _actual, _exp in items:
                s = self._seed_locked(key)
                if s is not None and reserved and s[2] < r.res_expire_ms:
                    # the figure last seen counted this call's reservation (seen while it was
                    # live): the call's actual cost replaces it, as the shared store will do
                    self.local.unseed(key, reserved)
            spent = self.local.settle("", "", items, [], self._now_ms())
            self._replay.append(Replay(r.res_key, r.member, items, r.id))
            self._owed_locked()
        return spent

    def release_failed(self, r: Reservation, items: list[SettleItem]) -> None:
        """A release of a reservation held on the shared store, while it is down: give the
        reservation back on the local store where the figure last seen counted it (seen while
        it was live), as ``settle_failed`` does, so a call that spent nothing does not block
        its customer until recovery; and keep the refund for the shared store (an orphan,
        released at recovery)."""
        with self._lock:
            for key, reserved, _actual, _exp in items:
                s = self._seed_locked(key)
                if s is not None and reserved and s[2] < r.res_expire_ms:
                    self.local.unseed(key, reserved)
        self.orphan(r.res_key, r.member, items)

    def _seed_locked(self, key: str) -> tuple[int, int, int] | None:
        """Start ``key`` on the local store from the figure last seen, once per figure (seeding
        it again would count a reservation given back since, see ``settle_failed``; a newer
        figure, seen by a check answered after the outage began, still raises it); the
        figure, or None."""
        s = self._last_seen.get(key)
        if s is not None and self._seeded.get(key, -1) < s[2]:
            self._seeded[key] = s[2]
            self.local.seed(key, s[0], s[1])
        return s

    def push_local(self, r: Reservation, items: list[SettleItem]) -> Replay | None:
        """Spend settled on the local fallback also belongs in the shared store: while it is
        down, summed per customer for the catch-up; once back, a replay for the caller to send
        now (``sent_failed`` if that fails)."""
        items = [SettleItem(k, 0, actual, exp) for k, _r, actual, exp in items if actual]
        if not items:
            return None
        with self._lock:
            if self.down_since is None:
                return Replay(r.res_key, "", items, r.id)
            spend = self._local_spend.setdefault(r.res_key, {})
            for k, _r, actual, exp in items:
                e = spend.setdefault(k, [0, exp])
                e[0] += actual
                e[1] = max(e[1], exp)
        return None

    def send_failed(self, exc: BaseException, rp: Replay) -> None:
        """Sending a replay raised: the store is down, replay it (same id) at recovery; or it
        refused the data (logged by ``mark_down``, and dropped: it would be refused again)."""
        if self.mark_down(exc):
            with self._lock:
                self._replay.append(rp)
        else:
            log.error("guard re-sync refused by the store, dropped: %r", rp)

    def close(self) -> None:
        self.local.close()
