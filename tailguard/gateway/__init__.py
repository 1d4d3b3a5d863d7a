"""The gateway: one front door for every LLM call — attribute, guard, price, record.

::

    from tailguard.gateway import create_gateway, load_config
    app = create_gateway(load_config("gateway.toml"))     # an ASGI app: uvicorn, hypercorn...

``tailguard.gateway.mock.create_mock()`` is a fake provider speaking both wire formats, for the
demo, the tests and the benchmark. See ``docs/gateway.md``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Gateway", "GatewayConfig", "Upstream", "create_gateway", "create_key", "load_config"]

# Lazy, so that ``tailguard.gateway.usage`` (the SDK reads usage with it) imports without the
# gateway extra (starlette, uvicorn).
_EXPORTS = {
    "Gateway": "tailguard.gateway.app",
    "create_gateway": "tailguard.gateway.app",
    "GatewayConfig": "tailguard.gateway.config",
    "Upstream": "tailguard.gateway.config",
    "create_key": "tailguard.gateway.config",
    "load_config": "tailguard.gateway.config",
}

if TYPE_CHECKING:  # pragma: no cover
    from tailguard.gateway.app import Gateway, create_gateway
    from tailguard.gateway.config import GatewayConfig, Upstream, create_key, load_config


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'tailguard.gateway' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
