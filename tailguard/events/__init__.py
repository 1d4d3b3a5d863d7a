"""Events: the validated schema and the readers (JSONL, CSV, Parquet)."""

from tailguard.events.schema import (
    LEDGER_SCHEMA,
    Escalation,
    Event,
    Guard,
    LlmCall,
    Retrieval,
    TaskOutcome,
    ToolCall,
)
from tailguard.vocabulary import KINDS

__all__ = [
    "KINDS",
    "LEDGER_SCHEMA",
    "Escalation",
    "Event",
    "Guard",
    "LlmCall",
    "Retrieval",
    "TaskOutcome",
    "ToolCall",
]
