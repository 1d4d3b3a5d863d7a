"""Configuration: a TOML file layered under ``TAILGUARD_*`` environment variables.

Resolution order for every setting (first wins): the command-line flag, the environment
variable, the config file (``--config`` / ``TAILGUARD_CONFIG``, else ``./tailguard.toml`` when it
exists), the default. Every variable is documented in ``docs/configuration.md``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tailguard.errors import ConfigError

DEFAULT_LEDGER = "./tailguard-data"

#: setting name -> (environment variable, default)
SETTINGS: dict[str, tuple[str, Any]] = {
    "ledger": ("TAILGUARD_LEDGER", DEFAULT_LEDGER),
    "prices": ("TAILGUARD_PRICES", None),
    "policy": ("TAILGUARD_POLICY", None),
    "redis_url": ("TAILGUARD_REDIS_URL", None),
    # the event times ingest accepts, START..END (tailguard.events.batch.TsWindow)
    "ts_window": ("TAILGUARD_TS_WINDOW", None),
}


def load_file(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Read the config file; an explicit path that does not exist is an error."""
    explicit = path or os.environ.get("TAILGUARD_CONFIG")
    p = Path(explicit) if explicit else Path("tailguard.toml")
    if not p.exists():
        if explicit:
            raise ConfigError(f"{p}: config file not found")
        return {}
    try:
        with p.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
    section = data.get("tailguard", data)
    if not isinstance(section, dict):
        raise ConfigError(f"{p}: [tailguard] must be a table")
    return section


def section(
    name: str, keys: Iterable[str], path: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """The ``[name]`` table of the config file ({} when absent). A key not in ``keys`` is a
    ``ConfigError`` naming it and the allowed keys: a misspelt setting must not silently leave
    a default in force (``[decide] lifetime_month = 6`` would otherwise judge at 24 months)."""
    sec = load_file(path).get(name, {})
    return check_table(f"[{name}]", sec, keys)


def check_table(label: str, table: Any, keys: Iterable[str]) -> dict[str, Any]:
    """``table`` as a dict whose keys are all in ``keys``, else a ``ConfigError`` naming them."""
    if not isinstance(table, dict):
        raise ConfigError(f"{label} must be a table")
    allowed = sorted(keys)
    extra = sorted(set(table) - set(allowed))
    if extra:
        raise ConfigError(
            f"{label}: unknown key(s) {', '.join(extra)}; allowed: {', '.join(allowed)}"
        )
    return table


def setting(name: str, flag: Any = None, *, config_path: str | None = None) -> Any:
    """The value of one setting: flag, then ``TAILGUARD_*``, then the file, then the default."""
    if flag is not None:
        return flag
    env, default = SETTINGS[name]
    if os.environ.get(env):
        return os.environ[env]
    return load_file(config_path).get(name, default)
