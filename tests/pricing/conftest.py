"""Fixtures for the pricing tests (the root conftest isolates the environment)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def price_file(tmp_path: Path) -> Callable[[str], Path]:
    """Write a price TOML file and return its path."""
    counter = iter(range(1_000_000))

    def write(text: str) -> Path:
        p = tmp_path / f"prices-{next(counter)}.toml"
        p.write_text(text)
        return p

    return write
