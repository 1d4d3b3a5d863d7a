"""Commands: gateway."""

from tailguard.cli.app import app  # noqa: F401
