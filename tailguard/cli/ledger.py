"""Commands: ledger."""

from tailguard.cli.app import app  # noqa: F401
