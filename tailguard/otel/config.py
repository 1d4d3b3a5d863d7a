"""The ``[otel]`` table: which span attributes carry the customer, how long to wait for it.

::

    [otel]
    customer_attributes = ["tailguard.customer_id"]       # first present wins, span then ancestors
    user_attributes = ["tailguard.user_id", "enduser.id", "user.id"]
    session_attributes = ["tailguard.session_id", "session.id", "gen_ai.conversation.id"]
    feature_attributes = ["tailguard.feature"]
    task_attributes = ["tailguard.task_id"]
    workload_attributes = ["tailguard.workload"]
    hold_s = 30.0              # how long a span without a customer waits for an ancestor
    max_held = 100000          # spans held at most (the oldest is settled early past it)
    tool_kind = "read"         # execute_tool spans without a tailguard.tool_kind attribute
    input_excludes_cache = []  # providers whose spans carry raw usage: input excludes cache tokens

An unknown key is an error naming the file and the key (a typo never silently does nothing).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from tailguard.errors import ConfigError


class OtelConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    customer_attributes: list[str] = msgspec.field(
        default_factory=lambda: ["tailguard.customer_id"]
    )
    user_attributes: list[str] = msgspec.field(
        default_factory=lambda: ["tailguard.user_id", "enduser.id", "user.id"]
    )
    session_attributes: list[str] = msgspec.field(
        default_factory=lambda: ["tailguard.session_id", "session.id", "gen_ai.conversation.id"]
    )
    feature_attributes: list[str] = msgspec.field(default_factory=lambda: ["tailguard.feature"])
    task_attributes: list[str] = msgspec.field(default_factory=lambda: ["tailguard.task_id"])
    workload_attributes: list[str] = msgspec.field(default_factory=lambda: ["tailguard.workload"])
    hold_s: Annotated[float, msgspec.Meta(ge=0)] = 30.0
    max_held: Annotated[int, msgspec.Meta(ge=1)] = 100_000
    tool_kind: Literal["read", "write"] = "read"
    input_excludes_cache: list[str] = msgspec.field(default_factory=list)

    def attribution_names(self) -> list[str]:
        return [
            *self.customer_attributes,
            *self.user_attributes,
            *self.session_attributes,
            *self.feature_attributes,
            *self.task_attributes,
            *self.workload_attributes,
        ]


def load_otel_config(path: str | os.PathLike[str] | None) -> OtelConfig:
    """The ``[otel]`` table of a TOML file: ``path``, else the config file every command reads
    (``TAILGUARD_CONFIG``, else ``./tailguard.toml`` when it exists); defaults without one."""
    if path is None:
        env = os.environ.get("TAILGUARD_CONFIG")
        if env:
            path = env
        elif Path("tailguard.toml").exists():
            path = "tailguard.toml"
        else:
            return OtelConfig()
    p = Path(path)
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{p}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    table = data.get("otel", {})
    try:
        return msgspec.convert(table, OtelConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{p}: [otel]: {exc}") from None
