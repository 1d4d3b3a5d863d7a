"""The mock provider on a loopback socket (shared with the SDK tests)."""

from tests.sdk.conftest import mock  # noqa: F401
