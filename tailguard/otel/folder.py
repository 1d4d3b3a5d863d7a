"""The fold of ``tailguard collect``'s write-ahead log, in a process of its own.

``collect`` spends most of its CPU on two things that share one interpreter lock: reading spans
and folding the log into Parquet (``Ledger.append`` builds the events in Python). The log is
made for several processes (closed files are folded by whichever process takes their lock), so
``collect`` only writes and rotates its log, and this process folds the closed files on the
other core: ``python -m tailguard.otel.folder LEDGER PARENT_PID [INTERVAL_S]``. It exits, after
a last fold, when its parent is gone (killed or stopped); whatever it had not folded is folded
by the next process to open the ledger, as after any crash.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def run(ledger: str | Path, parent: int, interval_s: float = 1.0) -> None:
    from tailguard.ledger.url import open_ledger
    from tailguard.ledger.wal import WriteAheadLog
    from tailguard.pricing import PriceBook

    led = open_ledger(ledger)  # a directory or a ClickHouse URL; the log is in its local dir
    book = PriceBook.load(os.environ.get("TAILGUARD_PRICES") or None)

    def append(events: list[dict[str, Any]]) -> None:
        led.append(events, prices=book)

    wal = WriteAheadLog(led.path / "wal", append, flush_interval_s=10**9)
    try:
        while os.getppid() == parent:
            t = time.monotonic()
            wal.replay()
            time.sleep(max(0.05, interval_s - (time.monotonic() - t)))
    finally:
        wal.close()  # a last fold (its own live file is empty)


if __name__ == "__main__":  # pragma: no cover - run as a child of collect
    run(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else 1.0)
