"""Soft-threshold alerts POSTed to a webhook, off the request path.

Why a background thread: an alert must never add a network round trip to the LLM call that
crossed the threshold. "Once per scope per period" is decided by the store's alert flag (set
atomically with the reservation, shared by every replica on Redis), not here.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from decimal import Decimal
from typing import Any

log = logging.getLogger("tailguard.guard")


def _default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return str(o)
    raise TypeError(type(o).__name__)


class WebhookAlerter:
    """POST JSON alerts to one URL from a single worker thread; failures are logged, counted."""

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.sent = 0
        self.failed = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tailguard-webhook")

    def post(self, payload: Mapping[str, Any]) -> Future[bool]:
        """Queue one alert; the future says whether the server answered 2xx."""
        return self._pool.submit(self._send, dict(payload))

    def _send(self, payload: dict[str, Any]) -> bool:
        body = json.dumps(payload, default=_default).encode()
        req = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "tailguard-guard"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                ok = 200 <= resp.status < 300
        except Exception as exc:  # any network failure: an alert is best effort
            log.warning("guard webhook %s failed: %s", self.url, exc)
            ok = False
        if ok:
            self.sent += 1
        else:
            self.failed += 1
        return ok

    def close(self) -> None:
        self._pool.shutdown(wait=True)
