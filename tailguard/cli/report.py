"""Commands: report."""

from tailguard.cli.app import app  # noqa: F401
