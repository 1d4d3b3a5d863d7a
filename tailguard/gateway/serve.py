"""The uvicorn factory: each worker process builds its own gateway from the config file.

A factory (not an app object) because with ``--workers N`` uvicorn imports the app in every
worker; each needs its own connection pool, guard client and write-ahead log file.
"""

from __future__ import annotations

import os

from tailguard.gateway.app import Gateway, create_gateway
from tailguard.gateway.config import load_config


def app() -> Gateway:
    """Build the gateway from ``$TAILGUARD_GATEWAY_CONFIG`` (set by ``tailguard gateway``)."""
    return create_gateway(load_config(os.environ["TAILGUARD_GATEWAY_CONFIG"]))
