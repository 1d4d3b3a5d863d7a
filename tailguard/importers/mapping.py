"""Where an import finds the customer (and user, feature, session) in a source's record.

A source names its default rules (LiteLLM: ``end_user``, then
``metadata.user_api_key_end_user_id``, then a ``customer:`` request tag, then ``team_id``); a
``MAP.toml`` overrides any of them and renames the ids it finds::

    [customer_ids]          # an id found in the source (project, API key, workspace, team)
    proj_abc = "acme"
    [fields]                # where to look, in order
    customer = ["end_user", "metadata.customer_id", "tag:customer"]
    [exclude]               # records to leave out (e.g. those the gateway recorded already)
    "metadata.via" = ["tailguard-gateway"]

A path is dotted: its first part is a field of the record, the rest walks into objects (a JSON
text, as a CSV dump holds ``metadata``, is decoded on the way). ``tag:NAME`` reads a ``NAME:``
entry of the record's tag list. Unknown tables or keys are refused, not ignored: a typo would
otherwise silently attribute a month of spend to nobody.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from tailguard.errors import InputError

#: the fields a map may relocate
ROLES = ("customer", "user", "feature", "session")
_TABLES = ("customer_ids", "fields", "exclude")


@dataclass(frozen=True)
class ImportMap:
    """The operator's overrides: id renames, field rules per role, exclusion rules."""

    customer_ids: Mapping[str, str] = field(default_factory=dict)
    fields: Mapping[str, Sequence[str]] = field(default_factory=dict)
    exclude: Mapping[str, Sequence[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ImportMap:
        """Read a MAP.toml; a bad key or value raises ``InputError`` naming it."""
        p = Path(path)
        name = str(p)
        try:
            doc = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"{name}: no such file", [f"{name}:0: <file>: no such file"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{name}: not TOML", [f"{name}:0: <file>: {exc}"]) from None
        problems = [f"{name}:0: {k}: unknown table (one of {', '.join(_TABLES)})" for k in doc]
        problems = [pr for pr, k in zip(problems, doc, strict=True) if k not in _TABLES]
        ids = doc.get("customer_ids", {})
        for k, v in ids.items():
            if not isinstance(v, str) or not v:
                problems.append(f"{name}:0: customer_ids.{k}: must be a non-empty string")
        rules = doc.get("fields", {})
        for k, v in rules.items():
            if k not in ROLES:
                problems.append(f"{name}:0: fields.{k}: unknown field (one of {', '.join(ROLES)})")
            elif not isinstance(v, list) or not v or not all(isinstance(x, str) for x in v):
                problems.append(f"{name}:0: fields.{k}: must be a list of paths")
        excl = doc.get("exclude", {})
        for k, v in excl.items():
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                problems.append(f"{name}:0: exclude.{k}: must be a list of strings")
        if problems:
            raise InputError(f"{name}: invalid import map", problems)
        return cls(customer_ids=dict(ids), fields=dict(rules), exclude=dict(excl))

    def rules(self, role: str, default: Sequence[str]) -> Sequence[str]:
        return self.fields.get(role, default)


def lookup(record: Mapping[str, Any], path: str, tags_field: str | None) -> str | None:
    """The value at ``path`` in ``record`` as text (None when absent or empty)."""
    if path.startswith("tag:"):
        return _tag(record.get(tags_field) if tags_field else None, path[4:])
    node: Any = record
    for part in path.split("."):
        if isinstance(node, str) and node[:1] in "{[":
            node = _json(node)
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    if node is None or node == "" or isinstance(node, Mapping | list):
        return None
    return str(node)


def _json(text: str) -> Any:
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        return None


def _tag(tags: Any, name: str) -> str | None:
    if isinstance(tags, str):
        tags = _json(tags) if tags[:1] == "[" else tags.split(",")
    if not isinstance(tags, list):
        return None
    prefix = name + ":"
    for t in tags:
        if isinstance(t, str) and t.startswith(prefix) and len(t) > len(prefix):
            return t[len(prefix) :]
    return None


def first(record: Mapping[str, Any], paths: Sequence[str], tags_field: str | None) -> str | None:
    """The first path of ``paths`` that gives a value."""
    for p in paths:
        v = lookup(record, p, tags_field)
        if v is not None:
            return v
    return None


def excluded(record: Mapping[str, Any], mp: ImportMap, tags_field: str | None) -> bool:
    """Whether an exclusion rule of the map matches ``record``."""
    return any(lookup(record, p, tags_field) in set(vals) for p, vals in mp.exclude.items())
