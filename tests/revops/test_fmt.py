"""The quantity filter: exact, grouped, no trailing zeros, never rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from revops.templatetags.fmt import in_currency, quantity


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("12345.5000"), "12,345.5"),
        (Decimal("1500"), "1,500"),
        (Decimal("0.000001"), "0.000001"),
        (Decimal("1234567.123456"), "1,234,567.123456"),
        (Decimal("-2.50"), "−2.5"),
        (Decimal("0E-6"), "0"),
        (None, "—"),
    ],
)
def test_quantities_read_exactly(value, shown):
    assert quantity(value) == shown


@pytest.mark.parametrize(
    ("value", "currency", "shown"),
    [
        (Decimal("1234.5"), "usd", "1,234.50 USD"),
        (Decimal("5000.00"), "JPY", "5,000 JPY"),
        (Decimal("5000.50"), "jpy", "5,000.50 JPY"),
        (None, "usd", "—"),
    ],
)
def test_amounts_carry_their_currency(value, currency, shown):
    assert in_currency(value, currency) == shown
