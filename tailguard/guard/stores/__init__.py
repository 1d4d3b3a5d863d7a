"""Guard stores side by side with one shape: ``memory`` (in process) and ``redis`` (shared).

``RedisStore`` is imported lazily so the in-process guard works without the ``redis`` extra.
"""

from __future__ import annotations

from typing import Any

from tailguard.guard.stores.base import Store
from tailguard.guard.stores.memory import MemoryStore

__all__ = ["MemoryStore", "RedisStore", "Store", "StoreUnavailableError"]


def __getattr__(name: str) -> Any:
    if name in ("RedisStore", "StoreUnavailableError"):
        from tailguard.guard.stores import redis as _redis

        return getattr(_redis, name)
    raise AttributeError(name)
