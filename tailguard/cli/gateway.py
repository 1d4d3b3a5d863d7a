"""Commands: gateway, mock-upstream, keys create / list / revoke."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tailguard.cli.app import app
from tailguard.cli.output import Output, Table, output_options, print_json
from tailguard.errors import ConfigError

keys_app = typer.Typer(
    rich_markup_mode=None,  # help text is plain: "[env TAILGUARD_LEDGER]" is not Rich markup
    help="Virtual keys for the gateway (one per customer or user).",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")

ConfigOpt = Annotated[
    str | None,
    typer.Option(
        "--config", help="Gateway config TOML [env TAILGUARD_CONFIG; default ./tailguard.toml]."
    ),
]


def _config_path(flag: str | None) -> Path:
    p = Path(flag or os.environ.get("TAILGUARD_CONFIG") or "tailguard.toml")
    if not p.exists():
        raise ConfigError(f"{p}: gateway config not found (pass --config FILE)")
    return p


@app.command("gateway")
def gateway(
    config: ConfigOpt = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 4000,
    workers: Annotated[
        int, typer.Option("--workers", help="Worker processes (>1 needs redis_url).")
    ] = 1,
) -> None:
    """Run the gateway: an OpenAI- and Anthropic-compatible proxy that attributes, guards,
    prices and records every call.

    Example: tailguard gateway --config gateway.toml --port 4000
    """
    import uvicorn

    from tailguard.gateway.config import load_config

    path = _config_path(config).resolve()
    cfg = load_config(path)
    if not cfg.upstreams:
        raise ConfigError(f"{path}: no [[upstream]] configured")
    if workers > 1 and cfg.policy is not None and not cfg.redis_url:
        raise ConfigError(
            "--workers > 1 needs a shared guard store: set redis_url in [gateway] "
            "(in-process budgets cannot be shared between processes)"
        )
    from tailguard.gateway.keys import load_keys

    load_keys(cfg.keys)  # an unreadable keys file: one line now, not a worker's traceback
    os.environ["TAILGUARD_GATEWAY_CONFIG"] = str(path)
    uvicorn.run(
        "tailguard.gateway.serve:app",
        factory=True,
        host=host,
        port=port,
        workers=workers if workers > 1 else None,
        log_level="warning",
        access_log=False,
        lifespan="on",
    )


@app.command("mock-upstream")
def mock_upstream(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 9000,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", help="Delay before each answer.")
    ] = 0.0,
) -> None:
    """A fake LLM provider speaking OpenAI's and Anthropic's wire formats, streaming included,
    with token counts a test can work out by hand (docs/gateway.md).

    Example: tailguard mock-upstream --port 9000 --latency-ms 50
    """
    import uvicorn

    from tailguard.gateway.mock import create_mock

    uvicorn.run(
        create_mock(latency_ms=latency_ms),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
    )


@keys_app.command("create")
def keys_create(
    customer: Annotated[str, typer.Option("--customer", help="The customer the key bills.")],
    user: Annotated[
        str | None, typer.Option("--user", help="The user inside the customer.")
    ] = None,
    config: ConfigOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Issue a virtual key; only its sha256 is stored (in the config's keys file, mode 600).

    Example: tailguard keys create --customer acme --user u-17 --config gateway.toml --json
    """
    from tailguard.gateway.config import create_key, load_config

    cfg = load_config(_config_path(config))
    key = create_key(cfg.keys, customer, user)
    if json_:
        print_json({"key": key, "customer_id": customer, "user_id": user})
    else:
        typer.echo(key)


@keys_app.command("list")
@output_options
def keys_list(config: ConfigOpt = None) -> Output:
    """List the virtual keys: id, name (first and last characters), customer, user, created.
    No key can be read back: only hashes are stored.

    Example: tailguard keys list --config gateway.toml --json
    """
    from tailguard.gateway.config import load_config
    from tailguard.gateway.keys import list_keys

    rows = list_keys(load_config(_config_path(config)).keys)
    cols = ["id", "name", "customer_id", "user_id", "created"]
    return Output(tables=[Table(rows=rows, columns=cols, csv_columns=cols)])


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key itself, or its id from `keys list`.")],
    config: ConfigOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Revoke a virtual key: a running gateway refuses it within a second.

    Example: tailguard keys revoke 3f2a9c1b7d0e --config gateway.toml
    """
    from tailguard.gateway.config import load_config
    from tailguard.gateway.keys import revoke_key

    row = revoke_key(load_config(_config_path(config)).keys, key)
    if json_:
        print_json({"revoked": row})
    else:
        typer.echo(f"revoked {row['id']} ({row['name']}, customer {row['customer_id']})")
