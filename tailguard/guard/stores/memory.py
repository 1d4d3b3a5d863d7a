"""The in-process store: dictionaries behind one lock, journaled to a file.

Why a plain lock: every operation is a few dictionary updates (microseconds) and never waits on
I/O, so holding a ``threading.Lock`` is both thread-safe and asyncio-safe (the async methods
run the same code; nothing ever awaits while holding the lock, so the event loop is never
blocked for longer than one decision).

Durability: settled spend, kill flags and alert flags are appended to ``guard-journal.tsv`` in
the state directory (rate windows and in-flight reservations are not: they are worthless after
a restart). A check or settle only appends its lines to a text buffer in memory; a background
thread takes the buffer every ``flush_interval_s`` (default 1 s), and ``close()`` takes the
rest, and writes it to the file **outside the store's lock**, so no call ever waits on a
``write`` system call (a file buffer of 8 KiB written inside the lock made about one settle in
40 with seven limits, one in 160 with a budget alone, pay a system call: a p99 figure). At open
the journal is replayed and compacted into one line per live key. **Bound:** a crash of the
process (SIGKILL) loses at most the spend settled in the last ``flush_interval_s``; with
``fsync=True`` each flush is also fsynced, so a power loss loses at most the same. One process
owns a state directory (an exclusive lock file); ``readonly=True`` opens it for reading
(``tailguard guard status``) without the lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import os
import threading
import time
from pathlib import Path
from typing import IO

from tailguard.errors import GuardError
from tailguard.guard.stores.base import (
    CAP_DENY,
    KILL,
    KILL_NOW,
    KILLED,
    OK,
    RATE_DENY,
    Cap,
    CheckResult,
    Plan,
    Rate,
    SettleItem,
)

JOURNAL = "guard-journal.tsv"
LOCK = "guard.lock"
#: expired keys are swept after this many checks, or after as many checks as there are keys if
#: more: a sweep visits every key, so sweeping every 4,096 checks a store of 100,000 keys cost
#: ~25 key visits per check (and its milliseconds fell on one check in 4,096); sweeping after
#: len(keys) checks keeps it near one key visit per check, and the keys within about twice the
#: live ones
_SWEEP_EVERY = 4096
#: an entry's expiry once it is removed from its dictionary (expired): a plan that kept the
#: entry at its check (``plan.entries``) sees it and looks its key up again at settle
_GONE = -1
#: a plan's entries when its reservation is no longer live: every key looked up
_NO_ENTRIES: tuple[None, ...] = (None,) * 16


class StateLockedError(GuardError):
    """Another process already owns this guard state directory."""


class MemoryStore:
    """Thread- and asyncio-safe in-process store; persisted when given a directory."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        flush_interval_s: float = 1.0,
        fsync: bool = False,
        readonly: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._caps: dict[str, list[int]] = {}  # key -> [spent, reserved, expire_ms]
        self._rates: dict[str, list[int]] = {}  # key -> [count, expire_ms]
        self._flags: dict[str, int] = {}  # key -> expire_ms
        #: per reservation set: a heap of (expiry, member) and the live plans by member (a
        #: plan names its caps: an expired one is refunded from them, no member to decode)
        self._res: dict[str, tuple[list[tuple[int, str]], dict[str, Plan]]] = {}
        self._ops = 0
        self._sweep_at = _SWEEP_EVERY
        self._fsync = fsync
        self._journal: IO[str] | None = None
        #: journal lines not yet written, appended under ``_lock`` and taken whole by the
        #: flusher, which formats them outside the lock: a flag's line (a string), or a
        #: settle's ``(key, actual, expire_ms)`` (an ``S`` line: a tuple is ~5x cheaper to
        #: make than the line, and a settle of seven limits writes four)
        self._pending: list[str | tuple[str, int, int]] = []
        #: held while writing the journal file; taken before ``_lock``, never inside it
        self._jlock = threading.Lock()
        self._lockfile: IO[str] | None = None
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self.dir = Path(path) if path is not None else None
        if self.dir is not None:
            self._open(readonly, flush_interval_s)

    # --- persistence ---------------------------------------------------------------------------

    def _open(self, readonly: bool, interval: float) -> None:
        assert self.dir is not None
        jpath = self.dir / JOURNAL
        if not readonly:
            self.dir.mkdir(parents=True, exist_ok=True)
            self._lockfile = (self.dir / LOCK).open("w")
            try:
                fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                self._lockfile.close()
                raise StateLockedError(
                    f"{self.dir}: guard state is in use by another process (one process owns an "
                    "in-process store; share state between processes with the Redis store)"
                ) from exc
        if jpath.exists():
            self._replay(jpath)
        if readonly:
            return
        now = int(time.time() * 1000)
        tmp = jpath.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:  # compact: one line per live key
            for k, (spent, _r, exp) in self._caps.items():
                if exp > now and spent:
                    fh.write(f"S\t{k}\t{spent}\t{exp}\n")
            for k, exp in self._flags.items():
                if exp > now:
                    fh.write(f"F\t{k}\t{exp}\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, jpath)
        self._journal = jpath.open("a", encoding="utf-8")
        self._flusher = threading.Thread(
            target=self._flush_loop, args=(interval,), name="tailguard-guard-journal", daemon=True
        )
        self._flusher.start()

    def _replay(self, jpath: Path) -> None:
        with jpath.open(encoding="utf-8") as fh:
            for line in fh:
                f = line.rstrip("\n").split("\t")
                try:
                    if f[0] == "S":
                        e = self._caps.setdefault(f[1], [0, 0, 0])
                        e[0] += int(f[2])
                        e[2] = max(e[2], int(f[3]))
                    elif f[0] == "F":
                        self._flags[f[1]] = int(f[2])
                    elif f[0] == "D":
                        self._flags.pop(f[1], None)
                except (IndexError, ValueError):
                    continue  # a torn last line from a crash: everything before it counts

    def _flush_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._flush(self._fsync)

    def _flush(self, fsync: bool) -> None:
        """Write the pending lines to the journal. They are taken under ``_lock`` (one
        swap) and written under ``_jlock`` alone, so checks and settles go on meanwhile; the
        file keeps their order (one writer at a time, each batch taken in order)."""
        with self._jlock:
            with self._lock:
                batch = self._pending
                if batch:
                    self._pending = []
            j = self._journal
            if j is None or j.closed:
                return
            if batch:
                j.write(
                    "".join(
                        [x if type(x) is str else f"S\t{x[0]}\t{x[1]}\t{x[2]}\n" for x in batch]
                    )
                )
            j.flush()
            if fsync:
                os.fsync(j.fileno())

    def _log(self, line: str) -> None:
        if self._journal is not None:
            self._pending.append(line)

    def close(self) -> None:
        """Flush and fsync the journal and release the state directory."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        self._flush(True)
        with self._jlock, self._lock:
            if self._journal is not None and not self._journal.closed:
                self._journal.close()
            if self._lockfile is not None and not self._lockfile.closed:
                self._lockfile.close()

    # --- operations ----------------------------------------------------------------------------

    def _flag(self, key: str, now: int) -> bool:
        exp = self._flags.get(key)
        return exp is not None and exp > now

    def _purge(self, res_key: str, now: int) -> None:
        slot = self._res.get(res_key)
        if not slot:
            return
        heap, live = slot
        caps = self._caps
        while heap and heap[0][0] <= now:
            _exp, member = heapq.heappop(heap)
            plan = live.pop(member, None)
            if plan is not None:
                for c in plan.caps:  # (key, limit, amount, ...): refund the amount
                    e = caps.get(c[0])
                    if e is not None:
                        r = e[1] - c[2]
                        e[1] = r if r > 0 else 0

    def _sweep(self, now: int) -> None:
        for d in (self._caps, self._rates):
            for k in [k for k, v in d.items() if v[-1] <= now]:
                d.pop(k)[-1] = _GONE  # a plan holding this entry looks its key up again
        for k in [k for k, exp in self._flags.items() if exp <= now]:
            del self._flags[k]
        self._sweep_at = self._ops + max(
            _SWEEP_EVERY, len(self._caps) + len(self._rates) + len(self._flags)
        )

    def check(self, plan: Plan) -> CheckResult:
        """Check every limit of the plan, and apply all of it only if all pass.

        Rates and caps are the plain tuples of ``Rate`` and ``Cap``'s shapes, unpacked in one
        step each; every counter is looked up once. Rates, then caps, are checked and applied
        in one pass each; a refusal undoes what the check applied before it."""
        now = plan.now_ms
        with self._lock:
            ops = self._ops = self._ops + 1
            if ops >= self._sweep_at:
                self._sweep(now)
            res_key = plan.res_key
            slot = self._res.get(res_key)
            if slot is not None and slot[0] and slot[0][0][0] <= now:
                self._purge(res_key, now)
            kill_key = plan.kill_key
            if kill_key is not None:
                kexp = self._flags.get(kill_key)
                if kexp is not None and kexp > now:
                    return (KILLED, -1, [], False)  # type: ignore[return-value]
            prates = plan.rates
            rfresh = 0  # bit i set: rate i's window was made (or an expired one replaced) here
            if prates:  # a budget-only plan has none
                # counted as each passes, undone if a later rate or cap refuses (``_uncount``)
                rates = self._rates
                for n, (key, limit, amount, expire_ms) in enumerate(prates):
                    e = rates.get(key)
                    if e is None or e[1] <= now:
                        if amount > limit:
                            if n:
                                self._uncount(prates, n, rfresh)
                            return (RATE_DENY, n, [], False)  # type: ignore[return-value]
                        rates[key] = [amount, expire_ms]
                        rfresh |= 1 << n
                    else:
                        if e[0] + amount > limit:
                            if n:
                                self._uncount(prates, n, rfresh)
                            return (RATE_DENY, n, [], False)  # type: ignore[return-value]
                        e[0] += amount
            caps = self._caps
            pcaps = plan.caps
            used: list[int] = []
            # one pass: each cap is checked and, if it passes, reserved on at once; a later cap
            # that refuses undoes the earlier ones (``_unreserve``), so the store is as if no
            # cap had been touched (a refusal is rare; a second loop on every check is not)
            entries: list[list[int]] = []  # each cap's entry, for settle_plan
            fresh = 0  # bit i set: cap i's entry was made by this check
            moved: list[tuple[list[int], int]] | None = None  # (entry, its expiry before)
            alerts: list[tuple[str, int]] | None = None  # (alert key, expiry) crossed
            for (
                key,
                limit,
                amount,
                on_exceed,
                expire_ms,
                prev_key,
                prev_bp,
                alert_key,
                alert_at,
            ) in pcaps:
                e = caps.get(key)
                if e is None:
                    u = 0
                elif e[2] <= now:
                    del caps[key]
                    e[2] = _GONE
                    e = None
                    u = 0
                else:
                    u = e[0] + e[1]
                if prev_bp and prev_key is not None:
                    pe = caps.get(prev_key)
                    if pe is not None:
                        if pe[2] <= now:
                            del caps[prev_key]
                            pe[2] = _GONE
                        else:
                            u += pe[0] * prev_bp // 10000
                used.append(u)
                if on_exceed and limit >= 0 and u + amount > limit:
                    if entries:
                        self._unreserve(pcaps, entries, fresh, moved)
                    if prates:
                        self._uncount(prates, len(prates), rfresh)
                    i = len(entries)  # this cap's index
                    if on_exceed == KILL and kill_key is not None:
                        self._flags[kill_key] = plan.kill_expire_ms
                        self._log(f"F\t{kill_key}\t{plan.kill_expire_ms}\n")
                        return (KILL_NOW, i, used, False)  # type: ignore[return-value]
                    return (CAP_DENY, i, used, False)  # type: ignore[return-value]
                if e is None:
                    fresh |= 1 << len(entries)
                    e = caps[key] = [0, amount, expire_ms]
                else:
                    e[1] += amount
                    if expire_ms > e[2]:
                        if moved is None:
                            moved = []
                        moved.append((e, e[2]))
                        e[2] = expire_ms
                entries.append(e)
                if alert_key is not None and 0 <= alert_at <= u + amount:
                    if alerts is None:
                        alerts = []
                    alerts.append((alert_key, expire_ms))
            alerted = False
            if alerts is not None:  # a soft threshold crossed: its flag, once per period
                for alert_key, expire_ms in alerts:
                    if not self._flag(alert_key, now):
                        self._flags[alert_key] = expire_ms
                        self._log(f"F\t{alert_key}\t{expire_ms}\n")
                        alerted = True
            if slot is None:
                slot = self._res[res_key] = ([], {})
            heap, live = slot
            plan.entries = entries
            member = plan.member
            heapq.heappush(heap, (plan.res_expire_ms, member))
            live[member] = plan
            if len(heap) > 2 * len(live) + 64:  # settled entries linger in the heap: compact
                heap[:] = [(pl.res_expire_ms, m) for m, pl in live.items()]
                heapq.heapify(heap)
            return (OK, -1, used, alerted)  # type: ignore[return-value]

    def _uncount(self, prates: list[Rate], n: int, fresh: int) -> None:
        """Undo what a check counted on its first ``n`` rate windows before a later rate or a
        cap refused: a window it made is removed (a window that had expired counts as none),
        a window it found gives back the amount. (Under the lock, with the check.)"""
        rates = self._rates
        for i in range(n):
            key, _limit, amount, _exp = prates[i]
            if fresh >> i & 1:
                del rates[key]
            else:
                rates[key][0] -= amount

    def _unreserve(
        self,
        pcaps: list[Cap],
        entries: list[list[int]],
        fresh: int,
        moved: list[tuple[list[int], int]] | None,
    ) -> None:
        """Undo what a check reserved on its first ``len(entries)`` caps before a later one
        refused: an entry it made is removed, an entry it found gives back the amount and its
        expiry. (Under the lock, with the check.)"""
        caps = self._caps
        for i, e in enumerate(entries):
            c = pcaps[i]  # (key, limit, amount, ...)
            if fresh >> i & 1:
                del caps[c[0]]
                e[2] = _GONE
            else:
                e[1] -= c[2]
        if moved is not None:
            for e, expire_ms in reversed(moved):
                e[2] = expire_ms

    def settle(
        self,
        res_key: str,
        member: str,
        items: list[SettleItem],
        rate_adjust: list[Rate],
        now_ms: int = 0,
        settle_id: str = "",
    ) -> list[int]:
        """Refund the reservation if still live, add the actual amounts; return spent after.

        ``settle_id`` is accepted for the shape's sake and not needed: an in-process settle
        either ran or raised, it cannot time out and run later, so it is never replayed."""
        with self._lock:
            slot = self._res.get(res_key)
            live = slot is not None and slot[1].pop(member, None) is not None
            out = []
            log = self._pending.append if self._journal is not None else None
            caps = self._caps
            for key, reserved, actual, expire_ms in items:
                e = caps.get(key)
                if e is None:
                    e = caps[key] = [0, 0, expire_ms]
                if live:
                    r = e[1] - reserved
                    e[1] = r if r > 0 else 0
                if actual:
                    e[0] += actual
                    if expire_ms > e[2]:
                        e[2] = expire_ms
                    if log is not None:
                        log((key, actual, e[2]))  # an S line, formatted by the flusher
                out.append(e[0])
            for r in rate_adjust:  # (key, limit, amount, expire_ms): add the amount
                re = self._rates.get(r[0])
                if re is not None:
                    n = re[0] + r[2]
                    re[0] = n if n > 0 else 0
            return out

    def settle_plan(self, plan: Plan, micro: int, tok: int, tok_adjust: int) -> int:
        """``settle`` of a plan this store checked, from the plan itself: each cap's actual by
        its unit (``micro`` dollars, ``tok`` tokens, one step), ``tok_adjust`` added to the
        token window; the budget's spent after. The same updates as ``settle`` with
        ``planning.settle_items``' items, without building them, and each counter reached
        through the entry its check kept (``plan.entries``) instead of a lookup, unless the
        entry expired and was removed since (marked ``_GONE``)."""
        with self._lock:
            slot = self._res.get(plan.res_key)
            live = slot is not None and slot[1].pop(plan.member, None) is not None
            entries = plan.entries if live else None
            if entries is None:
                entries = _NO_ENTRIES
            log = self._pending.append if self._journal is not None else None
            caps = self._caps
            units = plan.units
            bi = plan.budget_index
            b_after = 0
            actuals = {"usd": micro, "tok": tok, "step": 1}  # by unit
            for i, (key, _l, reserved, _on, expire_ms, _pk, _pb, _ak, _aa) in enumerate(plan.caps):
                e = entries[i]
                if e is None or e[2] == _GONE:
                    e = caps.get(key)
                    if e is None:
                        e = caps[key] = [0, 0, expire_ms]
                if live:
                    r = e[1] - reserved
                    e[1] = r if r > 0 else 0
                actual = actuals[units[i]]
                if actual:
                    e[0] += actual
                    if expire_ms > e[2]:
                        e[2] = expire_ms
                    if log is not None:
                        log((key, actual, e[2]))  # an S line, formatted by the flusher
                if i == bi:
                    b_after = e[0]
            if tok_adjust and plan.tpm_key is not None:
                re = self._rates.get(plan.tpm_key)
                if re is not None:
                    n = re[0] + tok_adjust
                    re[0] = n if n > 0 else 0
            return b_after

    def add_spent(self, items: list[SettleItem], now_ms: int = 0) -> None:
        """Add spend with no reservation (the re-sync after a shared store's outage)."""
        self.settle("", "", items, [], now_ms)

    def seed(self, key: str, spent: int, expire_ms: int) -> None:
        """Raise a key's spent to at least a last-known figure (the fail-open fallback)."""
        with self._lock:
            e = self._caps.get(key)
            if e is None:
                self._caps[key] = [spent, 0, expire_ms]
            elif e[0] < spent:
                e[0] = spent

    def unseed(self, key: str, amount: int) -> None:
        """Lower a key's spent by ``amount``, never below zero: a reservation that a seeded
        figure counted and that settled since (the fail-open fallback; not journaled)."""
        with self._lock:
            e = self._caps.get(key)
            if e is not None:
                n = e[0] - amount
                e[0] = n if n > 0 else 0

    def read(
        self, keys: list[str], now_ms: int | None = None, res_key: str | None = None
    ) -> list[tuple[int, int]]:
        """``(spent, reserved)`` per cap key, (0, 0) when absent or expired; with ``res_key``,
        the customer's expired reservations are refunded first."""
        now = int(time.time() * 1000) if now_ms is None else now_ms
        with self._lock:
            if res_key is not None:
                self._purge(res_key, now)
            out = []
            for k in keys:
                e = self._caps.get(k)
                out.append((e[0], e[1]) if e is not None and e[2] > now else (0, 0))
            return out

    def clear_flag(self, key: str) -> bool:
        with self._lock:
            had = self._flags.pop(key, None) is not None
            if had:
                self._log(f"D\t{key}\n")
            return had

    async def acheck(self, plan: Plan) -> CheckResult:
        return self.check(plan)

    async def asettle(
        self,
        res_key: str,
        member: str,
        items: list[SettleItem],
        rate_adjust: list[Rate],
        now_ms: int = 0,
        settle_id: str = "",
    ) -> list[int]:
        return self.settle(res_key, member, items, rate_adjust, now_ms)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._stop.set()
