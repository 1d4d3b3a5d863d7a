"""The dashboard: ``tailguard ui``, the per-tenant view in a browser (docs/ui.md).

Server-rendered pages (Starlette, Jinja2) over the same library calls as the CLI, charts drawn as
SVG on the server (``tailguard.ui.charts``), each page with a JSON twin under ``/api``. Needs the
``ui`` extra: ``pip install "tailguard[ui]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_app"]


def create_app(ledger: Any, **kwargs: Any) -> Starlette:
    """The dashboard's ASGI app (``tailguard.ui.app.create_app``), imported on first use."""
    from tailguard.ui.app import create_app as _create

    return _create(ledger, **kwargs)
