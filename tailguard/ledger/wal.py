"""A write-ahead log in front of the ledger: acknowledged events survive a SIGKILL.

Writing one Parquet segment per request would cost milliseconds and thousands of tiny files, so
the gateway appends events as JSON lines to a log instead, and a background flusher turns the log
into segments with ``Ledger.append`` every few seconds. The ledger drops event ids it already
holds, so replaying a log twice (a crash between the segment commit and the log's deletion) never
double counts.

Group commit: ``submit(events)`` queues the events and returns a future; one writer thread drains
everything queued while the previous ``write + fdatasync`` ran, writes it in one ``write`` and syncs
once, then resolves every future of the batch. Under load one sync covers many requests; alone, a
request waits for one sync. ``durability="write"`` resolves after the ``write`` (survives a killed
process, not a power cut); ``"none"`` resolves at once (benchmarks only).

Files: ``DIR/wal-<pid>-<n>.jsonl``. The live file is held with an exclusive ``flock``, so several
gateway processes can share one directory: at start and on every flush a process takes the
closed files whose owner is gone (the lock is free), folds them into the ledger and deletes them.
A line cut short by the crash (no newline) was never acknowledged and is skipped.

Bad events are handled as ``tailguard ingest --rejects`` handles bad rows: when the ledger
refuses a batch, each event is checked against the ledger's schema once, the valid ones are
committed together (one segment, however many were bad) and each bad one goes to
``DIR/rejected.jsonl`` with its file, line, field, reason and the event itself (``raw``), so it
can be fixed and ingested; nothing is lost and nothing is committed one row at a time.
"""

from __future__ import annotations

import concurrent.futures as cf
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import msgspec

from tailguard.errors import InputError, LedgerError
from tailguard.events.batch import Reject, split_error
from tailguard.events.schema import Event

log = logging.getLogger("tailguard.ledger.wal")

Durability = Literal["fsync", "write", "none"]
_enc = msgspec.json.Encoder(decimal_format="number")
_dec = msgspec.json.Decoder()
_check = msgspec.json.Decoder(Event)  # the schema Ledger.append validates with


class WriteAheadLog:
    """JSON-lines log with group commit and a background flush into a ``Ledger``.

    ``append_fn`` receives a list of event dicts and commits them (``Ledger.append`` with the
    gateway's price book); it must be idempotent by ``event_id``.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        append_fn: Callable[[list[dict[str, Any]]], Any],
        *,
        durability: Durability = "fsync",
        flush_interval_s: float = 2.0,
        rotate_events: int = 50_000,
    ) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.append_fn = append_fn
        self.durability = durability
        self.flush_interval_s = flush_interval_s
        self.rotate_events = rotate_events
        self.stats = {"events": 0, "batches": 0, "syncs": 0, "flushed": 0, "rejected": 0}
        self._cond = threading.Condition()
        self._pending: list[tuple[list[bytes], cf.Future[None]]] = []
        self._seq = 0
        self._fh: Any = None
        self._in_file = 0
        self._file_lock = threading.Lock()  # the live file vs rotation
        self._closing = False
        self._open_new()
        self._writer = threading.Thread(target=self._write_loop, name="wal-writer", daemon=True)
        self._flusher = threading.Thread(target=self._flush_loop, name="wal-flusher", daemon=True)
        self._stop_flush = threading.Event()
        self._writer.start()
        self._flusher.start()

    # --- public --------------------------------------------------------------------------------

    def submit(self, events: Iterable[Mapping[str, Any]]) -> cf.Future[None]:
        """Queue events; the future resolves once they are durable (per ``durability``)."""
        lines = [_enc.encode(ev) + b"\n" for ev in events]
        fut: cf.Future[None] = cf.Future()
        if self.durability == "none":
            fut.set_result(None)
        with self._cond:
            if self._closing:
                raise LedgerError("write-ahead log is closed")
            self._pending.append((lines, fut))
            self._cond.notify()
        return fut

    def sink(self, events: list[dict[str, Any]]) -> None:
        """For ``Guard(sink=...)``: queue without waiting (the decision must not block)."""
        self.submit(events)

    def replay(self) -> int:
        """Fold every closed log whose owner is gone into the ledger; returns events folded."""
        done = 0
        for p in sorted(self.dir.glob("wal-*.jsonl")):
            if self._fh is not None and p == Path(self._fh.name):
                continue
            done += self._fold(p)
        return done

    def flush(self) -> int:
        """Rotate the live file and fold everything closed into the ledger now."""
        self._rotate()
        return self.replay()

    def close(self) -> None:
        """Write what is queued, fold everything into the ledger, stop the threads."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._writer.join()
        self._stop_flush.set()
        self._flusher.join()
        with self._file_lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
        self.replay()

    # --- writer --------------------------------------------------------------------------------

    def _open_new(self) -> None:
        self._seq += 1
        p = self.dir / f"wal-{os.getpid()}-{time.time_ns()}-{self._seq}.jsonl"
        fh = p.open("ab", buffering=0)
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fh = fh
        self._in_file = 0

    def _rotate(self) -> None:
        with self._file_lock:
            if self._fh is None or self._in_file == 0:
                return
            old = self._fh
            self._open_new()
            old.close()  # releases the flock: the file is now closed and foldable

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                batch, self._pending = self._pending, []
                if not batch and self._closing:
                    return
            data = b"".join(b"".join(lines) for lines, _ in batch)
            n = sum(len(lines) for lines, _ in batch)
            err: BaseException | None = None
            try:
                with self._file_lock:
                    fh = self._fh
                    mv = memoryview(data)
                    while mv:
                        k = os.write(fh.fileno(), mv)
                        mv = mv[k:]
                    if self.durability == "fsync":
                        os.fdatasync(fh.fileno())
                        self.stats["syncs"] += 1
                    self._in_file += n
                    rotate = self._in_file >= self.rotate_events
            except BaseException as exc:  # disk full, I/O error: the callers must know
                err = exc
                rotate = False
                log.exception("write-ahead log write failed")
            self.stats["events"] += n
            self.stats["batches"] += 1
            for _, fut in batch:
                if fut.done():
                    continue
                if err is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(err)
            if rotate:
                self._rotate()

    # --- flusher -------------------------------------------------------------------------------

    def _flush_loop(self) -> None:
        while not self._stop_flush.wait(self.flush_interval_s):
            try:
                self.flush()
            except Exception:
                log.exception("write-ahead log flush failed; will retry")

    def _fold(self, path: Path) -> int:
        try:
            fh = path.open("rb")
        except FileNotFoundError:
            return 0
        with fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return 0  # a live writer (another process) still owns it
            events = self._read(fh.read(), path)
            if events:
                self._commit(events, path)
            path.unlink(missing_ok=True)
            self.stats["flushed"] += len(events)
            return len(events)

    @staticmethod
    def _read(data: bytes, path: Path) -> list[tuple[int, dict[str, Any]]]:
        """(line number, event) of every whole line."""
        events: list[tuple[int, dict[str, Any]]] = []
        lines = data.split(b"\n")
        if lines and lines[-1]:  # cut short by a crash: never acknowledged
            log.warning("%s: skipping a torn last line (%d bytes)", path, len(lines[-1]))
        for n, line in enumerate(lines[:-1], start=1):
            if not line:
                continue
            try:
                events.append((n, _dec.decode(line)))
            except msgspec.DecodeError:
                log.warning("%s:%d: skipping an unreadable line", path, n)
        return events

    def _commit(self, numbered: list[tuple[int, dict[str, Any]]], path: Path) -> None:
        events = [ev for _, ev in numbered]
        try:
            self.append_fn(events)
            return
        except InputError:
            pass
        # the ingest path's rule: valid events committed together, each bad one set aside
        good: list[dict[str, Any]] = []
        rejects: list[Reject] = []
        for n, ev in numbered:
            try:
                _check.decode(_enc.encode(ev))
            except msgspec.ValidationError as exc:
                fld, reason = split_error(str(exc))
                rejects.append(Reject(str(path), n, fld, reason, _enc.encode(ev).decode()))
            else:
                good.append(ev)
        if good:
            try:
                self.append_fn(good)
            except InputError as exc:  # refused for a reason the schema does not state
                rejects += [
                    Reject(str(path), n, "<batch>", str(exc), _enc.encode(ev).decode())
                    for n, ev in numbered
                    if not any(r.line == n for r in rejects)
                ]
        if rejects:
            self.stats["rejected"] += len(rejects)
            out_lines = [
                _enc.encode(
                    {
                        "file": r.file,
                        "line": r.line,
                        "field": r.field,
                        "reason": r.reason,
                        "raw": r.raw,
                    }
                )
                + b"\n"
                for r in rejects
            ]
            with (self.dir / "rejected.jsonl").open("ab") as out:
                out.write(b"".join(out_lines))
                out.flush()
                os.fsync(out.fileno())
            log.error(
                "%s: %d invalid event(s) kept in %s (first: %s)",
                path,
                len(rejects),
                self.dir / "rejected.jsonl",
                rejects[0],
            )
