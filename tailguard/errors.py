"""Every error tailguard raises on purpose.

The hierarchy::

    TailguardError                      base; carries a one-line, user-facing message
    ├── ConfigError                     a config, policy or price file is invalid (key, reason)
    ├── InputError                      rows that fail validation (file:line: field: reason)
    ├── PricingError
    │   └── UnknownModelError           no price card for a model (says how to add one)
    ├── LedgerError                     the ledger directory cannot be read or written
    ├── NoDataError                     a report asked about a customer, window or day with no
    │                                   events: no data is not zero (window, last event)
    ├── MissingDependencyError          an optional extra is not installed (prints the pip line)
    └── GuardError                      raised by the guard (see tailguard.guard)

``retryable`` marks errors where trying the same call again may succeed (dlt's
Transient/Terminal split); everything else is terminal.
"""

from __future__ import annotations


class TailguardError(Exception):
    """Base class. ``str(err)`` is a message fit to show a user."""

    retryable: bool = False
    #: the CLI exit code for this class of failure
    exit_code: int = 1


class ConfigError(TailguardError):
    """A configuration, policy or price file has an invalid key or value."""


class InputError(TailguardError):
    """Input rows failed validation. ``problems`` holds ``file:line: field: reason`` strings."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class PricingError(TailguardError):
    """A cost could not be computed."""


class UnknownModelError(PricingError):
    """No price card matches the model; the event is kept as unpriced, never priced at zero."""

    exit_code = 3

    def __init__(self, model: str, provider: str | None = None) -> None:
        where = f" (provider {provider!r})" if provider else ""
        super().__init__(
            f"unknown model {model!r}{where}: no price in genai-prices or the override file. "
            f"Add it to a prices file and pass --prices FILE or set TAILGUARD_PRICES, e.g.\n"
            f'  [[model]]\n  model = "{model}"\n  input_mtok = 1.0\n  output_mtok = 2.0'
        )
        self.model = model
        self.provider = provider


class LedgerError(TailguardError):
    """The ledger directory is missing, unreadable or not writable."""


class NoDataError(TailguardError):
    """A report was asked about a customer, window or day that holds no events.

    No data is not zero: a customer with no events in the window is not "costing nothing", so
    the report refuses rather than computing from zeros. ``window`` is the ``(start, end)`` that
    was used (end exclusive, UTC); ``last_event`` the latest event of the customer (or of the
    ledger) when there is one, so the caller can say which window would hold data.
    """

    def __init__(
        self,
        message: str,
        *,
        window: tuple[object, object] | None = None,
        customer: str | None = None,
        last_event: object = None,
    ) -> None:
        super().__init__(message)
        self.window = window
        self.customer = customer
        self.last_event = last_event


class MissingDependencyError(TailguardError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f'{package} is not installed; install it with: pip install "tailguard[{extra}]"'
        )
        self.package = package
        self.extra = extra


class GuardError(TailguardError):
    """Base for errors raised by the guard."""
