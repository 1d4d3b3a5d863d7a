"""The public API of ``tailguard.guard`` and the customers table it reads."""

from __future__ import annotations

from decimal import Decimal as D

import tailguard.guard as guard
from tailguard.guard import CustomerInfo, customers_from_ledger
from tailguard.ledger import Ledger, read_customers_csv


def test_all_is_sorted_and_importable():
    assert guard.__all__ == sorted(guard.__all__)
    # every public name resolves (hasattr runs the package's lazy __getattr__ too)
    assert [name for name in guard.__all__ if not hasattr(guard, name)] == []


def test_customers_from_ledger(tmp_path):
    csv = tmp_path / "customers.csv"
    csv.write_text(
        "customer_id,name,tier,segment,mrr_usd,seats,contracted_pool_usd,signup_date\n"
        "acme,Acme,team,smb,400,25,,2025-01-02\n"
        "globex,Globex,enterprise,enterprise,9000,300,12000,2024-06-01\n"
    )
    led = Ledger(tmp_path / "ledger")
    led.write_customers(read_customers_csv(csv))
    got = customers_from_ledger(tmp_path / "ledger")
    assert got["acme"] == CustomerInfo(tier="team", seats=25, contracted_pool_usd=None)
    assert got["globex"].contracted_pool_usd == D("12000")
    assert customers_from_ledger(tmp_path / "empty") == {}
