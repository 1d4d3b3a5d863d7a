"""The gateway: one front door for every LLM call — attribute, guard, price, record.

::

    from tailguard.gateway import create_gateway, load_config
    app = create_gateway(load_config("gateway.toml"))     # an ASGI app: uvicorn, hypercorn...

``tailguard.gateway.mock.create_mock()`` is a fake provider speaking both wire formats, for the
demo, the tests and the benchmark. See ``docs/gateway.md``.
"""

from __future__ import annotations

from tailguard.gateway.app import Gateway, create_gateway
from tailguard.gateway.config import GatewayConfig, Upstream, create_key, load_config

__all__ = ["Gateway", "GatewayConfig", "Upstream", "create_gateway", "create_key", "load_config"]
