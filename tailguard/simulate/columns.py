"""The columns of a chunk of simulated events, and the arithmetic every stage shares.

One row per event, one numpy array per column (``FILL`` lists them with the value a kind that
does not carry a column holds); kinds are small integers (``KINDS`` order). ``llm_cost`` and
``unit_cost`` estimate what ingest will compute with genai-prices and ``prices.toml``: the
simulator sizes budgets and writes ``truth.json`` with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tailguard.simulate import catalog as cat
from tailguard.simulate import prices
from tailguard.vocabulary import KINDS as KINDS

US = 1_000_000  # microseconds per second
KIND_LLM, KIND_TOOL, KIND_RETR, KIND_ESC, KIND_OUT, KIND_GUARD = range(6)
#: order of kinds at the same timestamp (an outcome after the call that closed the task)
KIND_PRIO = np.array([1, 2, 0, 4, 3, 5])
TOOL_USD = np.array(prices.tool_usd(cat.TOOLS))


def excl_cumsum(v: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum within consecutive segments of ``counts`` rows, excluding the row itself."""
    cs = np.cumsum(v)
    starts = np.cumsum(counts) - counts
    first = np.repeat(starts, counts)
    return cs - v - (cs[first] - v[first])


def to_us(sec: np.ndarray) -> np.ndarray:
    return np.round(sec * US).astype(np.int64)


@dataclass
class Chunk:
    """The events of one chunk of customers, one entry per column, all of equal length."""

    cols: dict[str, np.ndarray]
    users: list[str]  # user_id strings, indexed by the ``user`` column
    n_sessions: int
    n_tasks: int
    stats: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.cols["kind"])


# columns and their fill values for kinds that do not carry them
FILL: dict[str, tuple[type, float | int]] = {
    "kind": (np.int8, -1),
    "ts": (np.int64, 0),
    "cust": (np.int64, -1),
    "user": (np.int64, -1),
    "session": (np.int64, -1),
    "task": (np.int64, -1),
    "workload": (np.int8, -1),
    "feature": (np.int8, -1),
    "model": (np.int8, -1),
    "attempt": (np.int32, -1),
    "input_tokens": (np.int64, -1),
    "output_tokens": (np.int64, -1),
    "cache_read_tokens": (np.int64, -1),
    "cache_write_tokens": (np.int64, -1),
    "reasoning_tokens": (np.int64, -1),
    "latency_ms": (np.float64, np.nan),
    "status": (np.int8, -1),
    "tool": (np.int8, -1),
    "queries": (np.int64, -1),
    "reranks": (np.int64, -1),
    "minutes": (np.float64, np.nan),
    "outcome": (np.int8, -1),
    "action": (np.int8, -1),
    "rule": (np.int8, -1),
    "amount_usd": (np.float64, np.nan),
    "cost_usd": (np.float64, np.nan),
}


def concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    sizes = [len(p["kind"]) for p in parts]
    for name, (dtype, fill) in FILL.items():
        arrs = [
            p[name].astype(dtype, copy=False) if name in p else np.full(s, fill, dtype=dtype)
            for p, s in zip(parts, sizes, strict=True)
        ]
        out[name] = np.concatenate(arrs)
    return out


def llm_cost(cols: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    """Estimated USD of the llm_call rows in ``mask`` from the price snapshot in params."""
    m = cols["model"][mask]
    inp = cols["input_tokens"][mask]
    cr = cols["cache_read_tokens"][mask]
    cw = cols["cache_write_tokens"][mask]
    out = cols["output_tokens"][mask]
    return (
        (inp - cr - cw) * cat.PRICE_IN[m]
        + cr * cat.PRICE_CR[m]
        + cw * cat.PRICE_CW[m]
        + out * cat.PRICE_OUT[m]
    )


def unit_cost(cols: dict[str, np.ndarray]) -> np.ndarray:
    """Estimated USD of every row that is not an LLM call, at the simulated operator's unit
    prices (``prices.py``: tools, retrieval queries and reranks, escalation minutes); 0 else."""
    kind = cols["kind"]
    out = np.zeros(len(kind))
    t = kind == KIND_TOOL
    out[t] = TOOL_USD[cols["tool"][t]]
    r = kind == KIND_RETR
    out[r] = (
        cols["queries"][r] * prices.RETRIEVAL_QUERY_USD + cols["reranks"][r] * prices.RERANK_USD
    )
    e = kind == KIND_ESC
    out[e] = cols["minutes"][e] * prices.ESCALATION_MINUTE_USD
    return out


# --- the generator, one function per stage ------------------------------------------------
#
# Each stage draws from the chunk's generator in a fixed order (the order below), so that a seed
# gives the same bytes; a stage takes the levels above it and returns its own level's arrays.
# Index arrays name their parent level by prefix: ``s_`` sessions, ``t_`` tasks, ``k_`` turns
# (one LLM call each, before retries), ``r_`` attempts, ``tc_`` tool calls; ``_g`` is the global
# customer index and ``_c`` the index within the chunk.
