"""Virtual keys: who a gateway key bills, stored as hashes, issued and revoked safely.

::

    keys.json (mode 600)
    {"keys": {"<sha256 of the key>": {"customer_id": "acme", "user_id": null,
                                      "name": "tg-AbC…xYz1", "created": "2026-12-02T14:00:00Z"}}}

Only the sha256 of a key is stored: a leaked keys file does not leak usable keys. A key's *id*
is the first 12 hex digits of that hash (what ``tailguard keys list`` shows and ``revoke``
takes).

Writers (``create_key``, ``revoke_key``) hold an exclusive ``flock`` on ``keys.json.lock`` for
the whole read-modify-write and write a uniquely named temporary file that is renamed over the
old one, so concurrent ``keys create`` never lose a key nor trip on each other's temp file
(8 concurrent creates used to store 2). Readers need no lock: the rename is atomic.

The gateway holds the keys in memory (``KeyRing``) and looks at the file at most every
``CHECK_EVERY_S`` seconds; a changed file (inode, size or mtime) is reloaded, so a revoked key
stops working within a second. A file that cannot be read or parsed during a reload keeps the
last good set and logs a warning: an operator's half-written edit must not turn every request
into a 500.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tailguard.errors import ConfigError

log = logging.getLogger("tailguard.gateway.keys")

KEY_PREFIX = "tg-"
#: how often the gateway looks at the keys file for changes (a revoke takes effect within it)
CHECK_EVERY_S = 0.5
#: the ledger's bound on ids (``tailguard.events.schema.Id``)
MAX_ID_CHARS = 512


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """Who a virtual key belongs to: the customer always, a user when it was issued for one."""

    customer_id: str
    user_id: str | None = None
    name: str | None = None
    created: str | None = None


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _parse(path: Path, text: str) -> dict[str, KeyRecord]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: unreadable keys file: {exc}") from exc
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, dict):
        raise ConfigError(f'{path}: a keys file is {{"keys": {{...}}}}')
    out: dict[str, KeyRecord] = {}
    for h, r in keys.items():
        if not isinstance(r, dict) or not isinstance(r.get("customer_id"), str):
            raise ConfigError(f"{path}: key {h[:12]}: customer_id missing")
        out[h] = KeyRecord(r["customer_id"], r.get("user_id"), r.get("name"), r.get("created"))
    return out


def load_keys(path: Path) -> dict[str, KeyRecord]:
    """sha256 of the key -> its record; a missing file is no keys."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: unreadable keys file: {exc}") from exc
    return _parse(path, text)


@contextmanager
def _locked(path: Path) -> Iterator[dict[str, Any]]:
    """The keys file's data under an exclusive lock; written back atomically on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(str(path) + ".lock", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data: dict[str, Any] = {"keys": {}}
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except ValueError as exc:
                raise ConfigError(f"{path}: unreadable keys file: {exc}") from exc
            if not isinstance(data, dict) or not isinstance(data.get("keys", {}), dict):
                raise ConfigError(f'{path}: a keys file is {{"keys": {{...}}}}')
        data.setdefault("keys", {})
        yield data
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    finally:
        os.close(lock)  # releases the flock


def _check_id(what: str, v: str | None) -> None:
    if v is not None and not 1 <= len(v) <= MAX_ID_CHARS:
        raise ConfigError(f"{what} must be 1 to {MAX_ID_CHARS} characters")


def create_key(path: Path, customer_id: str, user_id: str | None = None) -> str:
    """Issue a key for a customer (and user); only its hash is stored. Returns the key."""
    _check_id("the customer id", customer_id)
    _check_id("the user id", user_id)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    rec: dict[str, Any] = {
        "customer_id": customer_id,
        "name": key[:7] + "…" + key[-4:],
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if user_id:
        rec["user_id"] = user_id
    with _locked(path) as data:
        data["keys"][hash_key(key)] = rec
    return key


def key_id(h: str) -> str:
    """The short id of a key: the first 12 hex digits of its sha256."""
    return h[:12]


def list_keys(path: Path) -> list[dict[str, Any]]:
    """One row per key: id, name, customer_id, user_id, created (no secret in any of them)."""
    return [
        {
            "id": key_id(h),
            "name": r.name,
            "customer_id": r.customer_id,
            "user_id": r.user_id,
            "created": r.created,
        }
        for h, r in sorted(load_keys(path).items(), key=lambda kv: (kv[1].customer_id, kv[0]))
    ]


def revoke_key(path: Path, key_or_id: str) -> dict[str, Any]:
    """Remove one key, given as the key itself or its id (8 or more leading hex digits of the
    hash, unique). Returns the removed row; ``ConfigError`` when none or several match."""
    with _locked(path) as data:
        keys: dict[str, Any] = data["keys"]
        if key_or_id.startswith(KEY_PREFIX):
            h = hash_key(key_or_id)
            found = [h] if h in keys else []
        elif len(key_or_id) >= 8 and all(c in "0123456789abcdef" for c in key_or_id.lower()):
            found = [h for h in keys if h.startswith(key_or_id.lower())]
        else:
            raise ConfigError(
                f"{key_or_id!r}: give the key itself or its id from `tailguard keys list`"
            )
        if not found:
            raise ConfigError(f"{path}: no key matches {key_or_id!r}")
        if len(found) > 1:
            raise ConfigError(f"{path}: {len(found)} keys match {key_or_id!r}; give more digits")
        rec = keys.pop(found[0])
    return {
        "id": key_id(found[0]),
        "name": rec.get("name"),
        "customer_id": rec.get("customer_id"),
        "user_id": rec.get("user_id"),
    }


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class KeyRing:
    """The gateway's keys in memory, reloaded when the file changes (checked at most every
    ``CHECK_EVERY_S``); a bad file during a reload keeps the last good set."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.keys = load_keys(path)  # at start a bad file is an error: nothing good to keep
        self._sig = _signature(path)
        self._checked = time.monotonic()
        self._bad_sig: tuple[int, int, int] | None = None
        self._lock = threading.Lock()

    def get(self, h: str) -> KeyRecord | None:
        now = time.monotonic()
        if now - self._checked >= CHECK_EVERY_S:
            self._checked = now
            self.refresh()
        return self.keys.get(h)

    def refresh(self) -> None:
        """Reload the file if it changed since the last look."""
        sig = _signature(self.path)
        if sig == self._sig or (sig is not None and sig == self._bad_sig):
            return
        with self._lock:
            try:
                keys = load_keys(self.path)
            except ConfigError as exc:
                self._bad_sig = sig
                log.warning("%s; keeping the %d keys loaded before", exc, len(self.keys))
                return
            self.keys, self._sig, self._bad_sig = keys, sig, None
