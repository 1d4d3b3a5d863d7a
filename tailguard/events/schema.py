"""The event kinds of DESIGN.md as validated schemas, and the ledger's columnar layout.

One ledger row per event. Every kind shares the envelope (``event_id`` ... ``session_id``); the
kind-specific fields are nullable columns in one flat Arrow schema (``LEDGER_SCHEMA``) so that the
engine reads one table. Field names are a contract: see ``docs/events.md``.

Token convention (OpenTelemetry GenAI): ``input_tokens`` includes cache reads and cache writes;
``output_tokens`` includes reasoning tokens. Importers convert other conventions at the edge.

Money: ``cost_usd`` on input is the provider-reported (or operator-given) cost and wins over the
price card. Inputs are decoded straight to ``Decimal`` (no float round trip) and stored as
DECIMAL(18, 9): nano-dollars, rounded half-even once per event. Sums of DECIMAL are exact in the
engine, so every total is reproducible.
"""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from typing import Annotated

import msgspec
import pyarrow as pa

# the enums an event's fields take (tailguard.vocabulary); the tuples are re-exported here
from tailguard.vocabulary import GUARD_ACTIONS as GUARD_ACTIONS
from tailguard.vocabulary import KINDS as KINDS
from tailguard.vocabulary import OUTCOMES as OUTCOMES
from tailguard.vocabulary import WORKLOADS as WORKLOADS
from tailguard.vocabulary import GuardAction, Outcome, Status, ToolKind, Workload

NonNegInt = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]  # fits int64
#: finite and >= 0: NaN fails ``ge``, infinity fails ``le`` (CSV text "inf" would pass ``ge``)
NonNegFloat = Annotated[float, msgspec.Meta(ge=0, le=sys.float_info.max)]
AwareTs = Annotated[dt.datetime, msgspec.Meta(tz=True)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]


#: the input fields that hold money (decoded as Decimal, stored as DECIMAL(18, 9))
MONEY_COLUMNS: tuple[str, ...] = ("cost_usd", "amount_usd", "reported_cost_usd")
#: the largest amount DECIMAL(18, 9) holds
MAX_MONEY = Decimal("999999999.999999999")

#: an explicit null in these fields means "absent": the default applies
NULL_DEFAULTS: dict[str, object] = {
    "attempt": 1,
    "requests": 1,
    "cache_read_tokens": 0,
    "cache_write_tokens": 0,
    "cache_write_1h_tokens": 0,
    "reasoning_tokens": 0,
    "status": "ok",
    "queries": 1,
    "reranks": 0,
}


class _Envelope(msgspec.Struct, kw_only=True, forbid_unknown_fields=False, tag_field="kind"):
    event_id: Id
    ts: AwareTs
    customer_id: Id
    user_id: str | None = None
    feature: str | None = None
    task_id: str | None = None
    session_id: str | None = None
    workload: Workload | None = None


# Each kind is declared twice: the ``_...Fields`` struct holds the fields and their msgspec
# constraints (types, bounds, enums); the public subclass adds ``__post_init__`` with the rules
# msgspec cannot state (money bounds, token relations, null means default). The JSONL reader
# decodes the field structs (a Python call per event saved) and checks those rules on the
# whole batch in Arrow instead; anything else (CSV, ``Ledger.append``, code) uses the public
# classes, so a struct that exists is a valid event.


class _LlmCallFields(_Envelope, tag="llm_call"):
    model: Id
    input_tokens: NonNegInt
    output_tokens: NonNegInt
    provider: str | None = None
    attempt: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] | None = 1
    #: how many provider requests this row stands for: 1 for a call, the bucket's request count
    #: for an aggregate row (a usage-API bucket); every call count sums it (null means 1)
    requests: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)] | None = 1
    cache_read_tokens: NonNegInt | None = 0
    cache_write_tokens: NonNegInt | None = 0
    reasoning_tokens: NonNegInt | None = 0
    cost_usd: Decimal | None = None
    #: what the source system said the call cost (an import's LiteLLM ``spend``, Langfuse
    #: ``costDetails``, Helicone ``cost``): kept beside tailguard's own price, never instead of it
    reported_cost_usd: Decimal | None = None
    latency_ms: NonNegFloat | None = None
    status: Status | None = "ok"
    #: pricing inputs (``PRICING_INPUTS``): read when the call is priced, folded into its cost
    #: and not stored. The 1-hour cache writes among ``cache_write_tokens`` (Anthropic's
    #: ``cache_creation.ephemeral_1h_input_tokens``: 2x the input rate, not 1.25x) ...
    cache_write_1h_tokens: NonNegInt | None = 0
    #: ... and the tier the call was served at: ``batch`` (OpenAI's Batch API, Anthropic's
    #: Message Batches: half price), ``flex``, ``priority``; null or ``standard``: standard; any
    #: other string is kept and left unpriced (``tailguard.vocabulary.SERVICE_TIERS``)
    service_tier: Annotated[str, msgspec.Meta(max_length=64)] | None = None


class _ToolCallFields(_Envelope, tag="tool_call"):
    tool: Id
    tool_kind: ToolKind
    status: Status | None = "ok"
    cost_usd: Decimal | None = None
    latency_ms: NonNegFloat | None = None


class _RetrievalFields(_Envelope, tag="retrieval"):
    queries: NonNegInt | None = 1
    reranks: NonNegInt | None = 0
    cost_usd: Decimal | None = None


class _EscalationFields(_Envelope, tag="escalation"):
    minutes: NonNegFloat
    cost_usd: Decimal | None = None


class _TaskOutcomeFields(_Envelope, tag="task_outcome"):
    outcome: Outcome


class _GuardFields(_Envelope, tag="guard"):
    action: GuardAction
    rule: Id
    amount_usd: Decimal | None = None
    model: str | None = None


def _check_money(name: str, v: Decimal | None) -> None:
    # msgspec cannot put bounds on Decimal: money must be finite, >= 0 and fit DECIMAL(18, 9)
    if v is not None and (not v.is_finite() or v < 0 or v > MAX_MONEY):
        raise ValueError(f"{name} must be a finite number >= 0 and < 1e9, got {v}")


def _null_defaults(ev: msgspec.Struct) -> None:
    for name in ev.__struct_fields__:
        if getattr(ev, name) is None and name in NULL_DEFAULTS:
            setattr(ev, name, NULL_DEFAULTS[name])


class LlmCall(_LlmCallFields, tag="llm_call"):
    def __post_init__(self) -> None:
        _check_money("cost_usd", self.cost_usd)
        _check_money("reported_cost_usd", self.reported_cost_usd)
        _null_defaults(self)
        if (self.cache_read_tokens or 0) + (self.cache_write_tokens or 0) > self.input_tokens:
            raise ValueError(
                "cache_read_tokens + cache_write_tokens exceed input_tokens "
                "(input_tokens must include cache tokens, OpenTelemetry convention)"
            )
        if (self.cache_write_1h_tokens or 0) > (self.cache_write_tokens or 0):
            raise ValueError(
                "cache_write_1h_tokens exceed cache_write_tokens "
                "(cache_write_tokens must include the 1-hour writes)"
            )
        if (self.reasoning_tokens or 0) > self.output_tokens:
            raise ValueError(
                "reasoning_tokens exceed output_tokens "
                "(output_tokens must include reasoning, OpenTelemetry convention)"
            )


class ToolCall(_ToolCallFields, tag="tool_call"):
    def __post_init__(self) -> None:
        _check_money("cost_usd", self.cost_usd)
        _null_defaults(self)


class Retrieval(_RetrievalFields, tag="retrieval"):
    def __post_init__(self) -> None:
        _check_money("cost_usd", self.cost_usd)
        _null_defaults(self)


class Escalation(_EscalationFields, tag="escalation"):
    def __post_init__(self) -> None:
        _check_money("cost_usd", self.cost_usd)


class TaskOutcome(_TaskOutcomeFields, tag="task_outcome"):
    pass


class Guard(_GuardFields, tag="guard"):
    def __post_init__(self) -> None:
        _check_money("amount_usd", self.amount_usd)


Event = LlmCall | ToolCall | Retrieval | Escalation | TaskOutcome | Guard
#: the same events without the ``__post_init__`` rules (the JSONL reader checks those in bulk)
FieldsOnly = (
    _LlmCallFields
    | _ToolCallFields
    | _RetrievalFields
    | _EscalationFields
    | _TaskOutcomeFields
    | _GuardFields
)

#: cost is stored in nano-dollars: DECIMAL(18, 9)
MONEY = pa.decimal128(18, 9)

#: The ledger's flat columnar schema (one table for all kinds; kind-specific columns are null
#: where they do not apply). ``cost_usd`` is the resolved cost; ``cost_source`` says where it came
#: from (reported | price | unit | unpriced); ``unpriced`` is true when no price was found.
#: ``reported_cost_usd`` is the cost the source stated: the input's ``reported_cost_usd`` (an
#: import keeps the source system's own figure there and lets tailguard price the tokens), else
#: the input's ``cost_usd``.
LEDGER_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("kind", pa.string()),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("customer_id", pa.string()),
        ("user_id", pa.string()),
        ("feature", pa.string()),
        ("task_id", pa.string()),
        ("session_id", pa.string()),
        ("workload", pa.string()),
        # llm_call
        ("provider", pa.string()),
        ("model", pa.string()),
        ("attempt", pa.int32()),
        ("requests", pa.int64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cache_read_tokens", pa.int64()),
        ("cache_write_tokens", pa.int64()),
        ("reasoning_tokens", pa.int64()),
        ("latency_ms", pa.float64()),
        ("status", pa.string()),
        # tool_call
        ("tool", pa.string()),
        ("tool_kind", pa.string()),
        # retrieval
        ("queries", pa.int64()),
        ("reranks", pa.int64()),
        # escalation
        ("minutes", pa.float64()),
        # task_outcome
        ("outcome", pa.string()),
        # guard
        ("action", pa.string()),
        ("rule", pa.string()),
        ("amount_usd", MONEY),
        # money
        ("reported_cost_usd", MONEY),
        ("cost_usd", MONEY),
        ("cost_source", pa.string()),
        ("unpriced", pa.bool_()),
        # a priced llm_call's cost per token type (null otherwise); they add up to cost_usd
        ("input_cost_usd", MONEY),
        ("cache_read_cost_usd", MONEY),
        ("cache_write_cost_usd", MONEY),
        ("output_cost_usd", MONEY),
    ]
)

#: a priced llm_call's cost per token type, filled by pricing (tailguard.pricing._table):
#: uncached input, cache read, cache write, output (output holds the rest: they add up to
#: ``cost_usd`` exactly); null for a reported cost, which cannot be split
COMPONENT_COLUMNS: tuple[str, ...] = (
    "input_cost_usd",
    "cache_read_cost_usd",
    "cache_write_cost_usd",
    "output_cost_usd",
)

#: input columns that pricing reads and the ledger does not store: folded into the cost when
#: the event is priced (``tailguard.pricing``), so old ledgers and a ClickHouse ledger need no
#: new column. An ``llm_call``'s fields (see ``_LlmCallFields``).
PRICING_INPUTS = pa.schema([("cache_write_1h_tokens", pa.int64()), ("service_tier", pa.string())])

#: columns an input file may carry (the ledger schema minus what pricing fills in, plus the
#: pricing inputs)
INPUT_COLUMNS: tuple[str, ...] = (
    *(n for n in LEDGER_SCHEMA.names if n not in ("cost_source", "unpriced", *COMPONENT_COLUMNS)),
    *PRICING_INPUTS.names,
)
#: ``INPUT_COLUMNS`` typed as in ``LEDGER_SCHEMA`` (``PRICING_INPUTS`` for those)
INPUT_SCHEMA = pa.schema(
    [
        LEDGER_SCHEMA.field(n) if n in LEDGER_SCHEMA.names else PRICING_INPUTS.field(n)
        for n in INPUT_COLUMNS
    ]
)
