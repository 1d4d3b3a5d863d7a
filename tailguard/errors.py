"""Every error tailguard raises on purpose.

The hierarchy (every error tailguard raises is one of these; a driver's error, DuckDB's, Redis's
or httpx's, is translated into one at the boundary where it is met, the original kept as
``__cause__``)::

    TailguardError                      base; carries a one-line, user-facing message
    ├── ArgumentError (ValueError)      a value given to a function is out of its domain (a month
    │                                   that is not a month, a window ending before it starts);
    │                                   names the parameter; the CLI names the flag; exit 2
    ├── ConfigError                     a config, policy or price file is invalid (key, reason)
    │   └── PolicyError                 a guard policy file or table (tailguard.guard.policy)
    ├── InputError                      rows that fail validation (file:line: field: reason)
    ├── PricingError
    │   ├── UnknownModelError           no price card for a model (says how to add one); exit 3
    │   └── NoTierPriceError            no price for the service tier the call was served at
    │       │                           (the operator prices the model's standard tier only); 3
    │       └── ContractPriceError      a tier billed by contract (Anthropic's priority, OpenAI's
    │                                   scale) without an operator entry for it: unpriced; 3
    ├── LedgerError                     no ledger at the path, or it cannot be read or written
    ├── NoDataError                     a report asked about a customer, window or day with no
    │                                   events: no data is not zero (window, last event)
    ├── MissingDependencyError          an optional extra is not installed (prints the pip line)
    ├── GuardError                      raised by the guard (see tailguard.guard)
    │   ├── StoreUnavailableError       the shared store (Redis) is down or failed (retryable)
    │   ├── StoreRequestError           the store refused one call's data: that call fails alone
    │   ├── StateLockedError            another process owns a guard state directory
    │   └── BudgetExceeded              the guard denied a call made through the SDK (decision)
    ├── OtlpError                       an OTLP request that cannot be read (tailguard.otel)
    └── UpstreamError                   the gateway could not reach the provider, or its answer
        └── UpstreamTimeout             broke off (retryable); the provider did not answer in time

Library messages name the thing that is wrong (a parameter, a file, a key), never a command-line
flag: the CLI (``tailguard.cli.app``) turns an ``ArgumentError``'s parameter into its flag and adds
the hint a command-line user needs. Exit codes: ``exit_code`` on each class (1 unless said).

``retryable`` marks errors where trying the same call again may succeed (dlt's
Transient/Terminal split); everything else is terminal.
"""

from __future__ import annotations


class TailguardError(Exception):
    """Base class. ``str(err)`` is a message fit to show a user."""

    retryable: bool = False
    #: the CLI exit code for this class of failure
    exit_code: int = 1


class ArgumentError(TailguardError, ValueError):
    """A value passed to a library function is outside its domain: a month that is not
    ``YYYY-MM``, a window whose end is before its start, a threshold that must be positive.

    ``argument`` is the parameter's name (``period``, ``date_from``); the CLI maps it to its flag
    (``--period``, ``--from``). A usage error: exit code 2. Also a ``ValueError``, so code that
    guards a call with ``except ValueError`` keeps working.
    """

    exit_code = 2

    def __init__(self, argument: str, reason: str) -> None:
        # "days must be at least 1" reads as it is; "'June' is not a month" gets "period: "
        super().__init__(reason if reason.startswith(argument) else f"{argument}: {reason}")
        self.argument = argument
        self.reason = reason


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
            f"Add it to a price override file (docs/pricing.md), e.g.\n"
            f'  [[model]]\n  model = "{model}"\n  input_mtok = 1.0\n  output_mtok = 2.0'
        )
        self.model = model
        self.provider = provider


class NoTierPriceError(PricingError):
    """The model has a price, but not at the service tier the call was served at (the operator's
    ``[[model]]`` entries price the model's standard tier and none is for the call's tier). The
    call is unpriced, never priced at another tier's rates."""

    exit_code = 3


class ContractPriceError(NoTierPriceError):
    """The call was served at a service tier its provider bills by contract, not by a list
    price (Anthropic's Priority Tier: a capacity commitment; OpenAI's Scale Tier: units bought
    upfront), and the operator's price file has no ``[[model]]`` entry for that tier. Such a
    call is unpriced, never priced at the standard rates; the contract's price goes in an entry
    with ``service_tier`` (docs/pricing.md), or the call's cost in ``cost_usd``."""

    exit_code = 3

    def __init__(self, model: str, provider: str, tier: str) -> None:
        prov = f'provider = "{provider}"\n  ' if provider else ""
        super().__init__(
            f"{model!r} at {provider or 'its provider'}: {tier} tier: contract price (billed "
            f"by contract, against a commitment; there is no list price per token), so the call "
            f"is unpriced. Put your contract's price in the price file (docs/pricing.md), e.g.\n"
            f'  [[model]]\n  {prov}model = "{model}"\n  service_tier = "{tier}"\n'
            f"  input_mtok = 1.0\n  output_mtok = 2.0\n"
            f"or send the call's cost as cost_usd."
        )
        self.model = model
        self.provider = provider
        self.tier = tier


class LedgerError(TailguardError):
    """No ledger at the path, or the ledger directory cannot be read or written."""


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


class UpstreamError(TailguardError):
    """The provider could not be reached, or its response broke off (the gateway answers 502)."""

    retryable = True


class UpstreamTimeout(UpstreamError):
    """The provider did not answer in time (the gateway answers 504)."""
