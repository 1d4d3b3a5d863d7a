"""Events: the validated schema and the readers (JSONL, CSV, Parquet)."""

from tailguard.events.schema import (
    KINDS,
    LEDGER_SCHEMA,
    Escalation,
    Event,
    Guard,
    LlmCall,
    Retrieval,
    TaskOutcome,
    ToolCall,
)

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
