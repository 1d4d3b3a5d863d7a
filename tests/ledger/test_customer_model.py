"""One customer model: every part of the product learns what a customer is from
``tailguard.customers`` (issue 15: analytics must not import the guard for it)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tailguard
from tailguard import customers
from tailguard.guard import CustomerInfo as GuardCustomerInfo

PACKAGE = Path(tailguard.__file__).parent
CUSTOMER_NAMES = {"CustomerInfo", "customers_from_ledger", "CUSTOMER_SCHEMA", "TIERS", "SEGMENTS"}


def _imports_of_customer_names(path: Path) -> list[str]:
    """``module:name`` for each customer name ``path`` imports from anywhere but
    ``tailguard.customers`` (or a re-export of it: ``tailguard.ledger`` for the schema)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                if alias.name in CUSTOMER_NAMES and node.module not in (
                    "tailguard.customers",
                    "tailguard.ledger",
                ):
                    out.append(f"{node.module}:{alias.name}")
    return out


def test_analytics_learns_the_customer_from_the_customer_module() -> None:
    found = {
        str(p.relative_to(PACKAGE)): names
        for p in sorted((PACKAGE / "analytics").rglob("*.py"))
        if (names := _imports_of_customer_names(p))
    }
    assert found == {}


def test_one_definition_everywhere() -> None:
    assert GuardCustomerInfo is customers.CustomerInfo
    from tailguard.guard.policy import CustomerInfo as PolicyCustomerInfo
    from tailguard.ledger import CUSTOMER_SCHEMA

    assert PolicyCustomerInfo is customers.CustomerInfo
    assert CUSTOMER_SCHEMA is customers.CUSTOMER_SCHEMA
    assert CUSTOMER_SCHEMA.names == list(customers.COLUMNS)
    for module in ("ledger/customers.py", "guard/customers.py"):
        assert not (PACKAGE / module).exists(), module


def test_the_guard_stays_light() -> None:
    """The guard runs in-process in applications: importing it (and the customer model it
    uses) must not load pyarrow."""
    code = "import sys, tailguard.guard; print('pyarrow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_customer_infos_from_a_ledger(tmp_path: Path) -> None:
    """A pool of 80 and 10 seats, read back through the ledger: the guard's view of row C."""
    from decimal import Decimal

    from tailguard.ledger import Ledger

    p = tmp_path / "c.csv"
    p.write_text(
        "customer_id,tier,segment,mrr_usd,seats,contracted_pool_usd\n"
        "C,team,mid_market,100,10,80\nF,free,smb,0,,\n"
    )
    led = Ledger(tmp_path / "led")
    led.write_customers(customers.read_customers_csv(p))
    got = customers.customers_from_ledger(led.path)
    assert got == {
        "C": customers.CustomerInfo("team", 10, Decimal("80")),
        "F": customers.CustomerInfo("free", None, None),
    }
