"""Bulk pricing of an Arrow table of events: resolve per (provider, model, window), then join.

Why not ``PriceBook.price`` per row: genai-prices costs about 65 µs a call, 65 s for a million
events. Here the distinct (provider, model) pairs are found with Arrow dictionary encoding, each
pair is resolved once per price window (``PriceBook.change_points``: genai-prices' start dates,
DeepSeek's daily off-peak boundaries, the operator's ``effective_from``), and every row picks its
price entry by index: window by ``searchsorted`` on its timestamp, tier band by ``searchsorted``
on its input tokens (tiers are cliffs on total input tokens, so they vectorise like windows).

Arithmetic is exact: each price entry's per-token rates are integers at a power-of-ten scale
(at least nano-dollars), costs are ``int64`` sums of products, and the one rounding step is an
integer half-even division down to nano-dollars, the same rule as ``round_usd``. A row whose cost
could overflow ``int64`` (a float64 estimate says so) or whose rates need more than 18 decimals
is priced instead with ``ModelPrice.cost`` in ``Decimal`` — same result, just slower; no row falls
back to genai-prices itself.

Rules per row (``cost_source``):
- any kind with a ``cost_usd`` on input: that cost (``reported``);
- ``reported_cost_usd`` is the input's ``reported_cost_usd`` (a source system's own figure,
  kept beside the price: an import sets it and no ``cost_usd``), else the input's ``cost_usd``;
- ``llm_call``: tokens at the price in force at the event's ``ts`` (``price``); no price, or
  token counts that break the convention (cache tokens above input tokens), or
  ``status = "usage_invalid"`` (the gateway repaired counts it could not trust): cost null,
  ``unpriced`` true (``unpriced``) — never a zero;
- ``tool_call``: ``units.tool_call_usd[tool]`` else its ``default`` (``unit``); with
  ``status = "usage_invalid"`` (a web search of a call whose usage could not be trusted, as
  the gateway records it) unpriced like its call;
- ``retrieval``: ``queries * retrieval_query_usd + reranks * rerank_usd`` (``unit``);
- ``escalation``: ``minutes * escalation_minute_usd`` (``unit``); ``minutes`` is a float and is
  first rounded half-even to a micro-minute (60 µs), the only non-decimal input;
- ``task_outcome`` and ``guard``: 0 (``none``); any other kind: null and unpriced.

A priced ``llm_call`` also stores its cost per token type (``COMPONENT_COLUMNS``: uncached
input, cache read, cache write, output), so a FOCUS export has one row per token type without
re-pricing. Each of the first three is its own exact product rounded down to a nano-dollar;
``output_cost_usd`` is ``cost_usd`` minus those three, so the four add up to ``cost_usd``
exactly and none is negative (the sum of floors never exceeds the rounded total); output
therefore also holds the per-request fee a few models have, and under 3 nano-dollars of
rounding. A reported cost cannot be split: its components are null.

An aggregate row (``requests`` > 1, an imported usage bucket) pays the per-request fee once per
request, and its tier band (tiers are cliffs on one call's input tokens) is chosen by the mean
input per request: exact when the bucket's requests fall in one band, which a provider's own
bucket of one model usually does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tailguard.events.schema import COMPONENT_COLUMNS, LEDGER_SCHEMA, MONEY
from tailguard.pricing._book import ModelPrice, PriceBook
from tailguard.pricing._money import MAX_NANO, MTOK, div_round_half_even, scaled, to_nano
from tailguard.vocabulary import KINDS

I64 = npt.NDArray[np.int64]

SOURCES = ("reported", "price", "unit", "unpriced", "none")
_REPORTED, _PRICE, _UNIT, _UNPRICED, _NONE = range(5)
#: int64 products are kept below this; above it a row is priced in Decimal instead
_SAFE = float(2**62)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: the input columns the pricing rules read
_USED = (
    "kind",
    "ts",
    "provider",
    "model",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "tool",
    "queries",
    "reranks",
    "minutes",
    "cost_usd",
    "requests",
)
#: input columns pricing reads but the ledger does not store (``tailguard.events.schema``'s
#: ``PRICING_INPUTS``): folded into the cost here
_FOLDED = {"cache_write_1h_tokens": pa.int64(), "service_tier": pa.string()}
#: what pricing fills in beyond the input columns
PRICED_COLUMNS = ("cost_source", "unpriced", *COMPONENT_COLUMNS)


def price_table(book: PriceBook, table: pa.Table) -> pa.Table:
    """Fill ``reported_cost_usd``, ``cost_usd``, ``cost_source`` and ``unpriced``.

    ``table`` holds the columns of ``tailguard.events.schema.INPUT_COLUMNS`` (a missing optional
    column is read as all null); ``cost_usd`` is the cost given on input, or null. Returns a table
    with exactly ``LEDGER_SCHEMA``'s columns, order and types.
    """
    n = table.num_rows
    passthrough = {
        name: _column(table, name, LEDGER_SCHEMA.field(name).type, n)
        for name in LEDGER_SCHEMA.names
        if name not in PRICED_COLUMNS
    }
    cols = {name: _array(passthrough[name]) for name in _USED}
    cols |= {name: _array(_column(table, name, typ, n)) for name, typ in _FOLDED.items()}
    reported = cols["cost_usd"]
    stated = pc.coalesce(_array(passthrough["reported_cost_usd"]), reported)
    rep_nano, rep_valid = _money_to_nano(reported)

    kind_code = _codes(cols["kind"], KINDS)
    cost = np.zeros(n, dtype=np.int64)
    valid = np.ones(n, dtype=bool)
    source = np.full(n, _NONE, dtype=np.int8)
    # uncached input, cache read, cache write (nano-dollars); output is the rest of the cost
    comps = np.zeros((n, 3), dtype=np.int64)

    # any kind not known (code -1) is unpriced, never zero
    unknown = kind_code < 0
    valid[unknown] = False
    source[unknown] = _UNPRICED

    todo = ~rep_valid
    # status usage_invalid: the gateway could not trust the call's usage (an llm_call) or the
    # call that made it (its web searches, tool calls): unpriced, never a price
    flagged = pc.fill_null(pc.equal(passthrough["status"], "usage_invalid"), False)
    invalid = np.asarray(flagged.to_numpy(zero_copy_only=False), dtype=bool)
    llm = todo & (kind_code == 0)
    if llm.any():
        c, ok, parts = _price_llm(book, cols, np.flatnonzero(llm))
        cost[llm] = c
        comps[llm] = parts
        valid[llm] = ok
        source[llm] = np.where(ok, _PRICE, _UNPRICED)
    units = book.units
    tool = todo & (kind_code == 1)
    if tool.any():
        cost[tool] = _tool_costs(units.tool_call_usd, cols["tool"], np.flatnonzero(tool))
        source[tool] = _UNIT
    bad = (llm | tool) & invalid
    valid[bad] = False
    source[bad] = _UNPRICED
    retr = todo & (kind_code == 2)
    if retr.any():
        q = _ints(cols["queries"])[retr]
        r = _ints(cols["reranks"])[retr]
        cost[retr] = _linear([q, r], [units.retrieval_query_usd, units.rerank_usd], extra_scale=0)
        source[retr] = _UNIT
    esc = todo & (kind_code == 3)
    if esc.any():
        minutes = cols["minutes"].to_numpy(zero_copy_only=False)[esc]
        micro = np.rint(np.nan_to_num(minutes, nan=0.0) * 1e6).astype(np.int64)
        cost[esc] = _linear([micro], [units.escalation_minute_usd], extra_scale=6)
        source[esc] = _UNIT

    cost[rep_valid] = rep_nano[rep_valid]
    source[rep_valid] = _REPORTED
    valid[rep_valid] = True

    out: dict[str, pa.Array | pa.ChunkedArray] = dict(passthrough)
    out["reported_cost_usd"] = stated
    out["cost_usd"] = _nano_to_money(cost, valid)
    out["cost_source"] = pa.DictionaryArray.from_arrays(pa.array(source), pa.array(SOURCES)).cast(
        pa.string()
    )
    out["unpriced"] = pa.array(source == _UNPRICED)
    priced = source == _PRICE
    for j, name in enumerate(COMPONENT_COLUMNS[:3]):
        out[name] = _nano_to_money(np.where(priced, comps[:, j], 0), priced)
    out[COMPONENT_COLUMNS[3]] = _nano_to_money(
        np.where(priced, cost - comps.sum(axis=1), 0), priced
    )
    return pa.Table.from_arrays([out[name] for name in LEDGER_SCHEMA.names], schema=LEDGER_SCHEMA)


# ---------------------------------------------------------------------- llm calls
@dataclass
class _Entries:
    """Price entries (one per provider x model x window x tier band) as parallel int columns."""

    rates: list[tuple[int, int, int, int, int, int]] = field(
        default_factory=list
    )  # in, cr, cw, out, req, cw1h
    divisor: list[int] = field(default_factory=list)
    prices: list[ModelPrice] = field(default_factory=list)
    fallback: list[bool] = field(default_factory=list)

    def add(self, mp: ModelPrice, band: int) -> None:
        if band == 0:
            r = (mp.input_mtok, mp.cache_read_mtok, mp.cache_write_mtok, mp.output_mtok)
            w1h = mp.cache_write_1h_mtok
        else:
            t = mp.tiers[band - 1]
            r = (t.input_mtok, t.cache_read_mtok, t.cache_write_mtok, t.output_mtok)
            w1h = t.cache_write_1h_mtok
        w1h = r[2] if w1h is None else w1h
        per_token = [x / 1_000_000 for x in r] + [mp.request_usd, w1h / 1_000_000]
        scales = [scaled(x)[1] for x in per_token]
        s = max(scales)
        self.prices.append(mp)
        if s > 18:  # rates too fine for int64 arithmetic: this entry's rows go to Decimal
            self.rates.append((0, 0, 0, 0, 0, 0))
            self.divisor.append(1)
            self.fallback.append(True)
            return
        ints = [int(x.scaleb(s)) for x in per_token]
        self.rates.append((ints[0], ints[1], ints[2], ints[3], ints[4], ints[5]))
        self.divisor.append(10 ** (s - 9))
        self.fallback.append(False)


def _price_llm(
    book: PriceBook, cols: dict[str, pa.Array], rows: I64
) -> tuple[I64, npt.NDArray[np.bool_], npt.NDArray[np.int64]]:
    """Costs (nano-dollars), found-flags and the (uncached input, cache read, cache write)
    parts (nano-dollars, each rounded down) for the llm_call rows ``rows``."""
    m_dict = cols["model"].dictionary_encode()
    p_dict = pc.utf8_lower(cols["provider"]).dictionary_encode()
    t_dict = pc.utf8_lower(cols["service_tier"]).dictionary_encode()
    m_idx = _ints(m_dict.indices, fill=-1)[rows]
    p_idx = _ints(p_dict.indices, fill=-1)[rows] + 1  # 0 = no provider
    t_idx = _ints(t_dict.indices, fill=-1)[rows] + 1  # 0 = no service tier
    n_prov = len(p_dict.dictionary) + 1
    n_tier = len(t_dict.dictionary) + 1
    # -1: no model name (whatever the provider: -1 is the one negative key _groups expects)
    key = np.where(m_idx < 0, -1, (m_idx * n_prov + p_idx) * n_tier + t_idx)
    ts = _ints(cols["ts"])[rows]  # µs since the epoch, UTC
    inp = _ints(cols["input_tokens"])[rows]
    out = _ints(cols["output_tokens"])[rows]
    cr = _ints(cols["cache_read_tokens"])[rows]
    cw = _ints(cols["cache_write_tokens"])[rows]
    cw1h = _ints(cols["cache_write_1h_tokens"])[rows]
    req = np.maximum(_ints(cols["requests"], fill=1)[rows], 1)

    entry = np.full(len(rows), -1, dtype=np.int64)
    entries = _Entries()
    models = m_dict.dictionary.to_pylist()
    provs: list[str | None] = [None, *p_dict.dictionary.to_pylist()]
    tiers: list[str | None] = [None, *t_dict.dictionary.to_pylist()]
    for k, sel in _groups(key):
        k, tier = divmod(k, n_tier)
        name, prov, svc = models[k // n_prov], provs[k % n_prov], tiers[tier]
        g_ts = ts[sel]
        lo, hi = _from_us(int(g_ts.min())), _from_us(int(g_ts.max()))
        points = book.change_points(name, provider=prov, start=lo, end=hi, service_tier=svc)
        cuts = [p for p in points if lo < p <= hi]
        first_entry: list[int] = []
        thresholds: list[list[int]] = []
        for w_start in [lo, *cuts]:
            mp = book.resolve(name, provider=prov, at=w_start, service_tier=svc)
            if mp is None:
                first_entry.append(-1)
                thresholds.append([])
                continue
            first_entry.append(len(entries.prices))
            for band in range(len(mp.tiers) + 1):
                entries.add(mp, band)
            thresholds.append([t.above_input_tokens for t in mp.tiers])
        if not cuts and not thresholds[0]:
            entry[sel] = first_entry[0]
            continue
        if cuts:
            cut_us = np.array([_to_us(c) for c in cuts], dtype=np.int64)
            window = np.searchsorted(cut_us, g_ts, side="right").astype(np.int64)
        else:
            window = np.zeros(len(sel), dtype=np.int64)
        fe = np.array(first_entry, dtype=np.int64)[window]
        if any(thresholds):
            band = np.zeros(len(sel), dtype=np.int64)
            g_in = inp[sel] // req[sel]  # the mean call of an aggregate row picks the band
            for w, th in enumerate(thresholds):
                if th:
                    in_w = window == w if cuts else slice(None)
                    band[in_w] = np.searchsorted(np.array(th), g_in[in_w], side="left")
            fe = np.where(fe >= 0, fe + band, -1)
        entry[sel] = fe

    unc = inp - cr - cw
    cw5 = cw - cw1h  # the 5-minute writes: cache_write_tokens includes the 1-hour ones
    # usage that breaks the token convention (cache tokens above input, 1-hour writes above
    # all writes, negative counts) has no meaningful price: flag it unpriced rather than store
    # a negative or made-up cost
    entry[(unc < 0) | (cr < 0) | (cw5 < 0) | (cw1h < 0) | (out < 0)] = -1
    found = entry >= 0
    cost = np.zeros(len(rows), dtype=np.int64)
    parts = np.zeros((len(rows), 3), dtype=np.int64)
    if not entries.prices:
        return cost, found, parts
    rates = np.array(entries.rates, dtype=np.int64).reshape(-1, 6)
    divisor = np.array(entries.divisor, dtype=np.int64)
    fallback = np.array(entries.fallback, dtype=bool)
    e = np.where(found, entry, 0)
    # int64 is safe when even the largest token count at the largest rate stays below _SAFE;
    # otherwise estimate each row in float64 and send the big ones to Decimal.
    tokens = inp + out
    bound = float(tokens.max(initial=0)) * float(rates.max(initial=0)) * 5
    if bound < _SAFE:
        big = np.zeros(len(rows), dtype=bool)
    else:
        rf = rates.astype(np.float64)
        big = (
            unc * rf[e, 0]
            + cr * rf[e, 1]
            + cw5 * rf[e, 2]
            + out * rf[e, 3]
            + req * rf[e, 4]
            + cw1h * rf[e, 5]
        ) >= _SAFE
    slow = found & (fallback[e] | big)
    fast = found & ~slow
    x_parts = [
        unc * rates[:, 0][e],
        cr * rates[:, 1][e],
        cw5 * rates[:, 2][e] + cw1h * rates[:, 5][e],
    ]
    x = x_parts[0] + x_parts[1] + x_parts[2]
    x += out * rates[:, 3][e]
    x += req * rates[:, 4][e]
    d = divisor[e]
    exact = bool((divisor == 1).all())
    cost = np.where(fast, x if exact else div_round_half_even(x, d), 0)
    for j, xp in enumerate(x_parts):
        parts[:, j] = np.where(fast, xp if exact else xp // d, 0)  # floor: output stays >= 0
    for i in np.flatnonzero(slow).tolist():
        mp = entries.prices[int(e[i])]
        mean_in = int(inp[i]) // int(req[i])
        p_in, p_cr, p_cw, p_out = mp.rates(mean_in)
        p_w1h = mp.write_1h_rate(mean_in)
        dec = [int(unc[i]) * p_in, int(cr[i]) * p_cr, int(cw5[i]) * p_cw + int(cw1h[i]) * p_w1h]
        total = (sum(dec) + int(out[i]) * p_out) / MTOK + mp.request_usd * int(req[i])
        cost[i] = _checked(to_nano(total))
        parts[i] = [int((v / MTOK).scaleb(9).to_integral_value(ROUND_FLOOR)) for v in dec]
    return cost, found, parts


def _groups(key: I64) -> list[tuple[int, I64]]:
    """(key, row positions) for each distinct non-negative key.

    Keys are small (models x providers), so a few masks beat a sort when there are few of them.
    """
    if len(key) == 0:
        return []
    counts = np.bincount(key + 1)  # key -1 (no model) -> bin 0
    present = np.flatnonzero(counts[1:])
    if len(present) <= 32:
        return [(int(k), np.flatnonzero(key == k)) for k in present]
    order = np.argsort(key, kind="stable")
    sorted_keys = key[order]
    bounds = np.flatnonzero(np.diff(sorted_keys)) + 1
    starts = np.concatenate([[0], bounds]).tolist()
    ends = np.concatenate([bounds, [len(key)]]).tolist()
    return [
        (int(sorted_keys[a]), order[a:b])
        for a, b in zip(starts, ends, strict=True)
        if sorted_keys[a] >= 0
    ]


# ---------------------------------------------------------------------- unit costs
def _tool_costs(prices: dict[str, Decimal], tool: pa.Array, rows: I64) -> I64:
    """Per-call tool prices by dictionary lookup (unlisted or null tool: the default price)."""
    enc = tool.take(pa.array(rows)).dictionary_encode()
    default = to_nano(prices.get("default", Decimal(0)))
    lookup = np.array(
        [
            to_nano(prices.get(t, prices.get("default", Decimal(0))))
            for t in enc.dictionary.to_pylist()
        ]
        + [default],
        dtype=np.int64,
    )
    idx = _ints(enc.indices, fill=-1)
    return lookup[np.where(idx < 0, len(lookup) - 1, idx)]


def _linear(counts: list[I64], prices: list[Decimal], *, extra_scale: int) -> I64:
    """``sum(count * price) / 10**extra_scale`` rounded half-even to nano-dollars, exactly."""
    scaled_prices = [scaled(p) for p in prices]
    s = max(sc for _, sc in scaled_prices)
    ints = [v * 10 ** (s - sc) for v, sc in scaled_prices]
    n = len(counts[0])
    est = np.zeros(n)
    for c, v in zip(counts, ints, strict=True):
        est += c.astype(np.float64) * float(v)
    if s <= 18 and (n == 0 or est.max() < _SAFE):
        x = np.zeros(n, dtype=np.int64)
        for c, v in zip(counts, ints, strict=True):
            x += c * v
        return div_round_half_even(x, 10 ** (s + extra_scale - 9))
    out = np.empty(n, dtype=np.int64)  # rare: Python ints are exact at any size
    for i in range(n):
        total = sum(int(c[i]) * p for c, p in zip(counts, prices, strict=True))
        out[i] = _checked(to_nano(Decimal(total).scaleb(-extra_scale)))
    return out


# ---------------------------------------------------------------------- arrow plumbing
def _column(table: pa.Table, name: str, typ: pa.DataType, n: int) -> pa.ChunkedArray:
    """A column cast to its ledger type; a missing column is all null."""
    if name not in table.column_names:
        return pa.chunked_array([pa.nulls(n, typ)])
    col = table.column(name)
    return col.cast(typ) if col.type != typ else col


def _array(col: pa.ChunkedArray) -> pa.Array:
    """One contiguous array (zero-copy when the column has a single chunk)."""
    if col.num_chunks == 1:
        return col.chunk(0)
    if col.num_chunks == 0:
        return pa.array([], col.type)
    return col.combine_chunks()


def _codes(arr: pa.Array, values: tuple[str, ...]) -> I64:
    """Index of each string in ``values`` (-1: null or not listed), via the dictionary."""
    enc = arr.dictionary_encode()
    lut = np.array(
        [values.index(v) if v in values else -1 for v in enc.dictionary.to_pylist()] + [-1],
        dtype=np.int64,
    )
    idx = _ints(enc.indices, fill=-1)
    return lut[np.where(idx < 0, len(lut) - 1, idx)]


def _ints(arr: pa.Array, *, fill: int = 0) -> I64:
    """An integer or timestamp column as int64 numpy, nulls as ``fill``."""
    if arr.type != pa.int64():  # timestamps: µs since the epoch
        arr = arr.cast(pa.int64())
    if arr.null_count:
        arr = arr.fill_null(fill)
    return arr.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)


def _money_to_nano(arr: pa.Array) -> tuple[I64, npt.NDArray[np.bool_]]:
    """A DECIMAL(18, 9) column as int64 nano-dollars (its unscaled value) and a valid mask."""
    n = len(arr)
    valid = (
        np.ones(n, dtype=bool)
        if arr.null_count == 0
        else arr.is_valid().to_numpy(zero_copy_only=False)
    )
    buf = arr.buffers()[1]
    if buf is None or n == 0:
        return np.zeros(n, dtype=np.int64), valid
    words = np.frombuffer(buf, dtype=np.int64)[2 * arr.offset : 2 * (arr.offset + n)]
    return words[0::2].copy(), valid  # low word: precision 18 always fits in int64


def _nano_to_money(nano: I64, valid: npt.NDArray[np.bool_]) -> pa.Array:
    """int64 nano-dollars as a DECIMAL(18, 9) array (built from the 128-bit words directly)."""
    words = np.empty(2 * len(nano), dtype=np.int64)
    words[0::2] = nano
    words[1::2] = np.where(nano < 0, -1, 0)
    validity = None if valid.all() else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(
        MONEY,
        len(nano),
        [validity, pa.py_buffer(words.tobytes())],
        null_count=int((~valid).sum()),
    )


def _checked(nano: int) -> int:
    if nano > MAX_NANO:
        raise OverflowError(f"a cost of {nano} nano-dollars does not fit DECIMAL(18, 9)")
    return nano


def _from_us(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def _to_us(t: dt.datetime) -> int:
    return (t - _EPOCH) // dt.timedelta(microseconds=1)
