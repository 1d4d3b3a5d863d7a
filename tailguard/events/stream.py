"""A DuckDB query streamed by a background thread, so the engine works while Python does.

DuckDB releases the GIL while it executes, so pulling its Arrow batches from another thread
lets the caller (pricing, dedupe, msgspec) use the other core meanwhile. The queue is bounded:
the engine runs at most a few batches ahead, and memory stays flat on any input size.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

_END = object()


class EngineStream:
    """Iterate the Arrow record batches of ``sql`` on ``con``, produced by a thread.

    An engine error is raised from the iteration (at the point the rows would have come).
    ``close`` stops the query (``interrupt``), waits for the thread and closes ``con``.
    """

    def __init__(self, con: Any, sql: str, batch_rows: int, *, ahead: int = 4) -> None:
        self._con = con
        self._queue: queue.Queue[Any] = queue.Queue(ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._pump, args=(sql, batch_rows), name="tailguard-engine", daemon=True
        )
        self._thread.start()

    def _pump(self, sql: str, batch_rows: int) -> None:
        try:
            for rb in self._con.sql(sql).to_arrow_reader(batch_rows):
                if self._stop.is_set() or not self._put(rb):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)
        finally:
            self._put(_END)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        self._con.interrupt()
        self._thread.join()
        self._con.close()
