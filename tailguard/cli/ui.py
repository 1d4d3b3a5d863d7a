"""Command: ui (the dashboard in a browser, docs/ui.md)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from tailguard.cli.app import app
from tailguard.cli.options import ConfigOpt, LedgerOpt, PolicyOpt, load_policy_option, read_ledger

__all__ = ["ui_cmd"]

#: addresses that only this machine reaches: no token needed there
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: how often (seconds) the dashboard looks for a changed ledger to compute its default views again
WATCH = 5.0


@app.command("ui")
def ui_cmd(
    ledger: LedgerOpt = None,
    policy: PolicyOpt = None,
    config: ConfigOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind; any but loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")
    ] = 8050,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Required on every request [env TAILGUARD_UI_TOKEN].",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Open the dashboard: overview, tail, customers, one customer, outcomes, anomalies.

    Read-only pages over the ledger, each with a JSON twin under /api (the same figures as the
    CLI's --json). Binds 127.0.0.1; on any other address a token is required (--token or
    TAILGUARD_UI_TOKEN), sent as "Authorization: Bearer TOKEN" or once as ?token=TOKEN.

    Example: tailguard ui --ledger tailguard-demo/ledger --policy tailguard-demo/sim/policy.toml
    """
    try:
        import uvicorn

        from tailguard.ui.app import create_app
    except ImportError as exc:  # pragma: no cover - the extra is in dev
        from tailguard.errors import MissingDependencyError

        raise MissingDependencyError(exc.name or "starlette", "ui") from exc
    from tailguard.analytics.diagnose import load_config

    token = token or os.environ.get("TAILGUARD_UI_TOKEN") or None
    if host not in LOOPBACK and not token:
        raise typer.BadParameter(
            f"{host} is reachable from other machines: give --token (or TAILGUARD_UI_TOKEN)",
            param_hint="--host",
        )
    led = read_ledger(ledger)
    web = create_app(
        led, policy=load_policy_option(policy), diagnose_config=load_config(config), token=token
    )
    import threading

    from tailguard.ui.app import warm

    # the first visitor's pages computed while the server starts, and again after each ingest
    # (the caches key on the ledger's content; checked every WATCH seconds)
    threading.Thread(
        target=warm, args=(web,), kwargs={"watch": WATCH}, daemon=True, name="tailguard-ui-warm"
    ).start()
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"tailguard dashboard on http://{shown}:{port}/  (ledger {led.path}; Ctrl-C stops)")
    uvicorn.run(web, host=host, port=port, log_level="warning")
