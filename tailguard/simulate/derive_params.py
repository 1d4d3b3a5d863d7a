# ruff: noqa: E501 - the generated comment lines name long sources
"""Derive the simulator's numeric parameters from the real data in ``../shared/realdata``.

Run from the repository root::

    .venv/bin/python -m tailguard.simulate.derive_params [REALDATA_DIR] > tailguard/simulate/params.py

Why a script: the package must work on a machine without ``../shared`` and must never carry the
real files, so it carries only what this script derives from them (quantile tables, a tail
exponent, a cache share, a price snapshot), with the sources named in the generated module.
Re-running it on the same files reproduces ``params.py`` byte for byte.

Sources (see ``../shared/realdata/README.md`` for commits):

- ``per_customer/servegen_per_client_summary.csv`` (alibaba/ServeGen): per-client total tokens over a
  day. Per pool, ``log(tokens) - median(log(tokens))``; the language and reasoning pools pooled
  give the shape of per-customer spend (Gini 0.85, top-1% share 0.33 on 331 clients). The body is a
  quantile table; above the 90th percentile a Pareto tail with the Hill exponent of the top 10%.
- ``traces/AzureLLMInferenceTrace_{conv,code}_2023.csv`` (Azure/AzurePublicDataset): prompt
  (ContextTokens) and completion (GeneratedTokens) sizes of chat and code (agent-like) requests.
- ``traces/mooncake_fast25_conversation_trace.jsonl`` (kvcache-ai/Mooncake): prompt and completion
  sizes of long-context requests (used for RAG turns) and, from ``hash_ids`` (512-token blocks), the
  token-weighted share of prompt tokens that are a prefix already seen (the cacheable share).
- Prices: a snapshot from the installed ``genai-prices`` for the models the simulator emits; the
  simulator only uses them to size budgets and to write estimated figures into ``truth.json``.
  Ingest prices events itself.
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

#: probabilities at which the token-size quantile tables are taken
TOKEN_PROBS = np.linspace(0.0, 1.0, 41)
#: probabilities of the per-customer spend body table (the tail above is Pareto)
BODY_TOP = 0.90
ACTIVITY_PROBS = np.linspace(0.0, BODY_TOP, 46)

MODELS = (
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "o3-mini"),
    ("anthropic", "claude-3-5-sonnet-20241022"),
    ("anthropic", "claude-sonnet-4-20250514"),
    ("anthropic", "claude-3-5-haiku-20241022"),
)


def _activity(realdata: Path) -> tuple[list[float], float, int]:
    pools: dict[str, list[float]] = defaultdict(list)
    with open(realdata / "per_customer" / "servegen_per_client_summary.csv") as f:
        for r in csv.DictReader(f):
            if not r["model_dir"].startswith(("language/", "reason/")):
                continue
            try:
                t = float(r["expected_input_tokens"]) + float(r["expected_output_tokens"])
            except ValueError:
                continue
            if math.isfinite(t) and t > 0:
                pools[r["model_dir"]].append(t)
    z: list[float] = []
    for v in pools.values():
        lv = np.log(np.asarray(v))
        z.extend((lv - np.median(lv)).tolist())
    za = np.sort(np.asarray(z))
    body = np.quantile(za, ACTIVITY_PROBS)
    k = round(len(za) * (1 - BODY_TOP))
    thr = za[-k - 1]
    alpha = 1.0 / float(np.mean(za[-k:] - thr))  # Hill estimator in log space
    return [round(float(x), 4) for x in body], round(alpha, 4), len(za)


def _table(values: np.ndarray) -> list[int]:
    return [round(float(x)) for x in np.quantile(values, TOKEN_PROBS)]


def _traces(realdata: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for name in ("conv", "code"):
        a = np.loadtxt(
            realdata / "traces" / f"AzureLLMInferenceTrace_{name}_2023.csv",
            delimiter=",",
            skiprows=1,
            usecols=(1, 2),
        )
        out[f"AZURE_{name.upper()}_CONTEXT"] = _table(a[:, 0])
        out[f"AZURE_{name.upper()}_GENERATED"] = _table(a[:, 1])
    inp, outp, cached = [], [], []
    seen: set[int] = set()
    with open(realdata / "traces" / "mooncake_fast25_conversation_trace.jsonl") as f:
        for line in f:
            d = json.loads(line)
            n = 0
            for h in d["hash_ids"]:
                if h not in seen:
                    break
                n += 1
            seen.update(d["hash_ids"])
            inp.append(d["input_length"])
            outp.append(d["output_length"])
            cached.append(min(n * 512, d["input_length"]))
    ia = np.asarray(inp, dtype=float)
    out["MOONCAKE_INPUT"] = _table(ia)
    out["MOONCAKE_OUTPUT"] = _table(np.asarray(outp, dtype=float))
    out["MOONCAKE_CACHE_SHARE"] = round(float(np.sum(cached) / ia.sum()), 4)
    return out


def _prices() -> dict[str, tuple[str, float, float, float, float]]:
    from genai_prices import Usage, calc_price

    res: dict[str, tuple[str, float, float, float, float]] = {}
    m = 1_000_000
    for provider, model in MODELS:

        def p(**kw: int) -> float:
            return float(calc_price(Usage(**kw), model, provider_id=provider).total_price)  # noqa: B023

        inp = p(input_tokens=m)
        out = p(output_tokens=m)
        cr = p(input_tokens=m, cache_read_tokens=m)
        cw = p(input_tokens=m, cache_write_tokens=m)
        res[model] = (provider, inp, out, cr, cw)
    return res


def render(realdata: Path) -> str:
    body, alpha, n = _activity(realdata)
    tr = _traces(realdata)
    prices = _prices()
    lines = [
        "# fmt: off",
        "# ruff: noqa: E501",
        '"""Numbers derived from real data by ``derive_params.py`` (generated: do not edit by hand).',
        "",
        "Regenerate: ``.venv/bin/python -m tailguard.simulate.derive_params > "
        "tailguard/simulate/params.py``.",
        '"""',
        "",
        "# Per-customer spend shape: alibaba/ServeGen data/ @ f891d1189eb32b3868dfc443800c4150548c282a",
        f"# (per_customer/servegen_per_client_summary.csv), {n} clients of the language and reasoning",
        "# pools, log(total tokens) minus the pool's median. Body quantiles at p = 0, 0.02, ..., "
        f"{BODY_TOP};",
        "# above it a Pareto tail whose exponent is the Hill estimate on the top 10%.",
        f"ACTIVITY_BODY_TOP = {BODY_TOP}",
        f"ACTIVITY_LOGZ = {body!r}",
        f"ACTIVITY_TAIL_ALPHA = {alpha}",
        "",
        "# Token sizes: quantiles at p = 0, 0.025, ..., 1 (41 values).",
        "# Azure/AzurePublicDataset data/ @ b469a113cedca53ddc3bdea71a143dc4b7d8700c",
    ]
    for k in (
        "AZURE_CONV_CONTEXT",
        "AZURE_CONV_GENERATED",
        "AZURE_CODE_CONTEXT",
        "AZURE_CODE_GENERATED",
    ):
        lines.append(f"{k} = {tr[k]!r}")
    lines += [
        "# kvcache-ai/Mooncake FAST25-release/traces/ @ 3b5a594133958449a1feaf1c9e0fc1b553e34a28",
        f"MOONCAKE_INPUT = {tr['MOONCAKE_INPUT']!r}",
        f"MOONCAKE_OUTPUT = {tr['MOONCAKE_OUTPUT']!r}",
        "# token-weighted share of prompt tokens in 512-token blocks already seen (cacheable prefix)",
        f"MOONCAKE_CACHE_SHARE = {tr['MOONCAKE_CACHE_SHARE']!r}",
        "",
        "# USD per million tokens (provider, input, output, cache read, cache write): a snapshot of",
        "# pydantic/genai-prices (the installed package) at derivation time. Used only to size budgets",
        "# and for the estimated figures in truth.json; ingest prices events itself.",
        "PRICES: dict[str, tuple[str, float, float, float, float]] = {",
    ]
    for model, v in prices.items():
        lines.append(f"    {model!r}: {v!r},")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    realdata = Path(args[0]) if args else Path(__file__).resolve().parents[3] / "shared/realdata"
    sys.stdout.write(render(realdata))


if __name__ == "__main__":
    main()
