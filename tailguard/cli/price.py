"""Commands: price (what one call costs, from genai-prices and the operator's price file)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import typer

from tailguard.cli.app import app
from tailguard.cli.options import PricesOpt
from tailguard.cli.output import Output, Table, output_options

_EXAMPLE = """\
Example:

  tailguard price --model gpt-4o-2024-08-06 --provider openai \\
      --input-tokens 12000 --cache-read-tokens 8000 --output-tokens 800 --json

  tailguard price --model claude-sonnet-4-5 --provider anthropic --input-tokens 3000 \
      --cache-write-tokens 2000 --cache-write-1h-tokens 1500 --output-tokens 200

  tailguard price --model gpt-5-mini --provider openai --service-tier flex \
      --input-tokens 4000 --output-tokens 900

  tailguard price --model claude-sonnet-4-5 --provider anthropic --service-tier priority \
      --input-tokens 10000 --output-tokens 500 --prices prices.toml

input tokens include the cache tokens (OpenTelemetry convention); cache writes include the
1-hour writes. An unknown model exits 3, as does a tier without a price (Anthropic's priority
and OpenAI's scale are contract prices: a [[model]] entry with service_tier prices them).
"""


def _parse_at(value: str | None) -> dt.datetime | None:
    """An ISO 8601 date or datetime (naive = UTC); ``None`` = now."""
    if value is None:
        return None
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise typer.BadParameter(
            f"not an ISO 8601 date or datetime: {value!r}", param_hint="--at"
        ) from exc
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


@app.command(help=f"Price one LLM call at a point in time.\n\n{_EXAMPLE}")
@output_options
def price(
    model: Annotated[str, typer.Option("--model", help="Model name as the app logs it.")],
    input_tokens: Annotated[
        int, typer.Option("--input-tokens", min=0, help="Input tokens, cache tokens included.")
    ],
    output_tokens: Annotated[
        int, typer.Option("--output-tokens", min=0, help="Output tokens, reasoning included.")
    ],
    provider: Annotated[
        str | None, typer.Option("--provider", help="Provider id, e.g. openai, anthropic.")
    ] = None,
    cache_read_tokens: Annotated[
        int, typer.Option("--cache-read-tokens", min=0, help="Input tokens read from cache.")
    ] = 0,
    cache_write_tokens: Annotated[
        int, typer.Option("--cache-write-tokens", min=0, help="Input tokens written to cache.")
    ] = 0,
    cache_write_1h_tokens: Annotated[
        int,
        typer.Option(
            "--cache-write-1h-tokens",
            min=0,
            help="The 1-hour cache writes among the cache writes (Anthropic: 2x input).",
        ),
    ] = 0,
    service_tier: Annotated[
        str | None,
        typer.Option(
            "--service-tier",
            help="Tier the call was served at: batch, flex, priority, scale [default: standard].",
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option("--at", help="When the call happened, ISO 8601 [default: now]."),
    ] = None,
    prices: PricesOpt = None,
) -> Output:
    from tailguard.config import setting
    from tailguard.pricing import PriceBook

    when = _parse_at(at)
    book = PriceBook.load(setting("prices", prices))
    quote = book.price(
        model=model,
        provider=provider,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cache_read_tokens=cache_read_tokens,
        cache_write_tokens=cache_write_tokens,
        cache_write_1h_tokens=cache_write_1h_tokens,
        service_tier=service_tier,
        at=when,
    )
    mp = book.resolve(model, provider=provider, at=quote.at, service_tier=service_tier)
    out: dict[str, Any] = {
        # a JSON number; cost_usd_exact keeps every digit of the DECIMAL(18, 9) value
        "cost_usd": float(quote.cost_usd),
        "cost_usd_exact": str(quote.cost_usd),
        "provider": quote.provider,
        "model": quote.model,
        "model_ref": model,
        "source": quote.source,
        "at": quote.at.isoformat(),
        "input_cost_usd": float(quote.input_cost_usd),
        "output_cost_usd": float(quote.output_cost_usd),
        "discount": float(quote.discount),
        # the tier whose rates were used (null: standard; a tier without its own price is
        # priced at the standard rates, batch at OpenAI and Anthropic at half of them)
        "service_tier": mp.service_tier if mp is not None else None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cache_read_tokens": cache_read_tokens,
            "cache_write_tokens": cache_write_tokens,
            "cache_write_1h_tokens": cache_write_1h_tokens,
        },
    }
    if mp is not None:
        inp, cr, cw, outp = mp.rates(input_tokens)
        out["rates_usd_per_mtok"] = {
            "input": float(inp),
            "cache_read": float(cr),
            "cache_write": float(cw),
            "output": float(outp),
        }
        out["cache_write_1h_usd_per_mtok"] = float(mp.write_1h_rate(input_tokens))
        out["valid_from"] = mp.valid_from.isoformat() if mp.valid_from else None
        out["valid_until"] = mp.valid_until.isoformat() if mp.valid_until else None
    flat = {k: v for k, v in out.items() if not isinstance(v, dict)} | out["usage"]
    flat |= {f"{k}_usd_per_mtok": v for k, v in out.get("rates_usd_per_mtok", {}).items()}
    return Output(payload=out, csv=Table([flat]), show=lambda: _print_quote(out))


def _print_quote(out: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    tier = f", {out['service_tier']} tier" if out["service_tier"] else ""
    t = Table(title=f"{out['model']} ({out['provider'] or 'any provider'}{tier}) at {out['at']}")
    t.add_column("part")
    t.add_column("tokens", justify="right")
    t.add_column("USD / Mtok", justify="right")
    t.add_column("USD", justify="right")
    rates = out.get("rates_usd_per_mtok", {})
    usage = out["usage"]
    uncached = usage["input_tokens"] - usage["cache_read_tokens"] - usage["cache_write_tokens"]
    w1h = usage["cache_write_1h_tokens"]
    rates = dict(rates, cache_write_1h=out.get("cache_write_1h_usd_per_mtok"))
    for label, n, key in (
        ("input (uncached)", uncached, "input"),
        ("cache read", usage["cache_read_tokens"], "cache_read"),
        (
            "cache write" if not w1h else "cache write (5 min)",
            usage["cache_write_tokens"] - w1h,
            "cache_write",
        ),
        *((("cache write (1 hour)", w1h, "cache_write_1h"),) if w1h else ()),
        ("output", usage["output_tokens"], "output"),
    ):
        rate = rates.get(key)
        t.add_row(label, f"{n:,}", "—" if rate is None else f"{rate:g}", "")
    t.add_row("input total", "", "", f"{out['input_cost_usd']:.9f}")
    t.add_row("output total", "", "", f"{out['output_cost_usd']:.9f}")
    t.add_row("[bold]cost[/bold]", "", "", f"[bold]{out['cost_usd_exact']}[/bold]")
    Console().print(t)
    note = f"source: {out['source']}, {out['service_tier'] or 'standard'} tier"
    if out["discount"]:
        note += f", discount {out['discount']:.2%}"
    typer.echo(note)
