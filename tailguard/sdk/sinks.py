"""Where the SDK's events go: the local ledger, or a gateway's ``POST /v1/events``.

``LedgerSink``: the gateway's own write-ahead log (``tailguard.ledger.wal``) in ``LEDGER/wal``,
folded into segments by ``Ledger.append`` (priced there: an unknown model stays unpriced). An
event is acknowledged once the log's ``fdatasync`` returned; after ``tg.flush()`` a SIGKILL
loses nothing: the next process that opens the ledger (SDK, gateway or ``tailguard`` command
that replays) folds the dead process's log in, and replaying never double counts (event ids).
Several processes may share one ledger directory: each holds its live log file under ``flock``.

``HttpSink``: batches as gzip-compressed JSON lines to ``ENDPOINT/v1/events`` with an ingest key
(stdlib ``urllib``: no dependency). A failed batch is kept and retried with the next one, up to
``max_pending`` events; past that the oldest are dropped and counted.
"""

from __future__ import annotations

import concurrent.futures as cf
import gzip
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections import deque
from typing import Any

import msgspec

from tailguard.errors import ConfigError

log = logging.getLogger("tailguard.sdk")
_enc = msgspec.json.Encoder(decimal_format="number")


class LedgerSink:
    """Events into a local ledger through its write-ahead log."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        prices: str | os.PathLike[str] | None = None,
        durability: str = "fsync",
        fold_interval_s: float = 5.0,
    ) -> None:
        from tailguard.ledger.url import open_ledger
        from tailguard.ledger.wal import WriteAheadLog

        if durability not in ("fsync", "write", "none"):
            raise ConfigError(f"durability must be fsync, write or none, got {durability!r}")
        self._ledger = open_ledger(path)  # a directory, chdb:/// or clickhouse://
        self.path = self._ledger.path  # local: the write-ahead log lives here
        self._prices = prices
        self._book: Any = None
        self._pending: deque[cf.Future[None]] = deque()
        self.wal = WriteAheadLog(
            self.path / "wal",
            self._append,
            durability=durability,  # type: ignore[arg-type]
            flush_interval_s=fold_interval_s,
        )
        self.wal.replay()  # what a killed process left behind

    def _append(self, events: list[dict[str, Any]]) -> None:
        if self._book is None:  # loaded on the log's thread, at the first fold
            from tailguard.pricing import PriceBook

            self._book = PriceBook.load(self._prices) if self._prices else PriceBook.load()
        self._ledger.append(events, prices=self._book)

    def send(self, events: list[dict[str, Any]]) -> None:
        self._pending.append(self.wal.submit(events))
        while self._pending and self._pending[0].done():
            self._pending.popleft().result()  # a write error surfaces in the recorder's count

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every sent event is durable in the log, then fold the log into segments."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._pending:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._pending.popleft().result(left)
        self.wal.flush()

    def close(self) -> None:
        self.flush()
        self.wal.close()

    def stats(self) -> dict[str, int]:
        s = self.wal.stats
        return {"durable": s["events"], "folded": s["flushed"], "rejected": s["rejected"]}


class HttpSink:
    """Events to a gateway's ``POST /v1/events`` (gzip JSON lines, ``Authorization: Bearer``)."""

    def __init__(
        self,
        endpoint: str,
        key: str | None,
        *,
        timeout_s: float = 10.0,
        max_pending: int = 100_000,
        tries: int = 3,
    ) -> None:
        if not endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        self.url = endpoint.rstrip("/") + "/v1/events"
        self.key = key
        self.timeout_s = timeout_s
        self.max_pending = max_pending
        self.tries = tries
        self._pending: deque[dict[str, Any]] = deque()
        self.counts = {"posted": 0, "http_failed": 0, "http_dropped": 0, "http_rejected": 0}

    def send(self, events: list[dict[str, Any]]) -> None:
        self._pending.extend(events)
        over = len(self._pending) - self.max_pending
        if over > 0:
            for _ in range(over):
                self._pending.popleft()
            self.counts["http_dropped"] += over
            log.warning("tailguard: gateway unreachable; dropped %d buffered event(s)", over)
        self._post_all()

    def _post_all(self) -> None:
        while self._pending:
            batch = [self._pending.popleft() for _ in range(min(5_000, len(self._pending)))]
            if not self._post(batch):
                self._pending.extendleft(reversed(batch))
                return

    def _post(self, batch: list[dict[str, Any]]) -> bool:
        body = gzip.compress(b"".join(_enc.encode(e) + b"\n" for e in batch), compresslevel=5)
        headers = {"content-type": "application/x-ndjson", "content-encoding": "gzip"}
        if self.key:
            headers["authorization"] = f"Bearer {self.key}"
        for attempt in range(self.tries):
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                    answer = json.loads(resp.read() or b"{}")
                self.counts["posted"] += int(answer.get("accepted", len(batch)))
                rejected = answer.get("rejected") or []
                if rejected:
                    self.counts["http_rejected"] += len(rejected)
                    log.error("tailguard: the gateway rejected events: %s", rejected[:3])
                return True
            except urllib.error.HTTPError as exc:
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    # terminal (bad key, bad body): retrying cannot help; say so and drop
                    self.counts["http_rejected"] += len(batch)
                    log.error("tailguard: %s answered %d: %s", self.url, exc.code, exc.read()[:300])
                    return True
            except (OSError, ValueError):
                pass
            time.sleep(min(2.0, 0.2 * 2**attempt))
        self.counts["http_failed"] += 1
        return False

    def flush(self, timeout: float | None = None) -> None:
        self._post_all()

    def close(self) -> None:
        self.flush()

    def stats(self) -> dict[str, int]:
        return {**self.counts, "http_pending": len(self._pending)}
