"""Number formatting shared by every page: money, ratios as percentages, sparklines."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template
from django.utils.html import format_html

register = template.Library()


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


@register.filter
def money(value, places: int = 0) -> str:
    """$1,234,567 (``places`` decimals); — for nothing; negative as −$1,234."""
    number = _decimal(value)
    if number is None:
        return "—"
    step = Decimal(1).scaleb(-int(places))
    rounded = number.quantize(step, rounding=ROUND_HALF_UP)
    text = f"${abs(rounded):,.{int(places)}f}"
    return f"−{text}" if rounded < 0 else text


@register.filter
def money_short(value) -> str:
    """$1.2M / $340K / $999 for dense tables; the exact figure goes in a title attribute."""
    number = _decimal(value)
    if number is None:
        return "—"
    sign = "−" if number < 0 else ""
    number = abs(number)
    for size, suffix in ((Decimal("1e9"), "B"), (Decimal("1e6"), "M"), (Decimal("1e3"), "K")):
        if number >= size:
            return f"{sign}${(number / size).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}{suffix}"
    return f"{sign}${number.quantize(Decimal(1), rounding=ROUND_HALF_UP)}"


@register.filter
def pct(value, places: int = 1) -> str:
    """A fraction as a percentage: 0.3333 → 33.3%."""
    number = _decimal(value)
    if number is None:
        return "—"
    return f"{(number * 100).quantize(Decimal(1).scaleb(-int(places)), rounding=ROUND_HALF_UP)}%"


@register.filter
def signed_pct(value, places: int = 1) -> str:
    number = _decimal(value)
    if number is None:
        return "—"
    text = pct(number, places)
    return f"+{text}" if number > 0 else text.replace("-", "−")


@register.filter
def sparkline(values, size: str = "120x28"):
    """An inline SVG polyline of a series (no JavaScript), scaled to its own maximum."""
    # Pixel positions only: floats are fine here (no money is computed from them).
    numbers = [float(v or 0) for v in (values or [])]
    width, height = (int(part) for part in size.split("x"))
    if len(numbers) < 2:
        return ""
    top = max(numbers) or 1.0
    step = (width - 2) / (len(numbers) - 1)
    points = " ".join(f"{1 + step * k:.1f},{(height - 2) - (height - 4) * v / top:.1f}" for k, v in enumerate(numbers))
    return format_html(
        '<svg class="sparkline" width="{}" height="{}" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        '<polyline fill="none" stroke="currentColor" stroke-width="1.5" points="{}"/></svg>',
        width,
        height,
        width,
        height,
        f"Daily revenue, last {len(numbers)} days",
        points,
    )


@register.filter
def times(value) -> str:
    """A multiplier as read: 1.5000 → 1.5×, 1.0 → 1×; — for nothing."""
    number = _decimal(value)
    if number is None:
        return "—"
    return f"{number.normalize():f}×"


@register.filter
def quantity(value) -> str:
    """An exact quantity as read: 12,345.5 (grouped, every stored decimal that is not a
    trailing zero, never rounded); — for nothing."""
    number = _decimal(value)
    if number is None:
        return "—"
    whole, _, fraction = f"{abs(number):f}".partition(".")
    fraction = fraction.rstrip("0")
    text = f"{int(whole):,}" + (f".{fraction}" if fraction else "")
    return f"−{text}" if number < 0 else text


# Currencies billed in whole units (¥500 is 500): shown without decimals.
ZERO_DECIMAL_CURRENCIES = frozenset(
    "bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split()  # noqa: SIM905
)


@register.filter
def in_currency(value, currency: str) -> str:
    """1,234.50 USD; 5,000 JPY (the currency's own decimals, its code as the unit); — for nothing."""
    number = _decimal(value)
    if number is None:
        return "—"
    places = 0 if currency.lower() in ZERO_DECIMAL_CURRENCIES and number == number.to_integral_value() else 2
    return f"{number:,.{places}f} {currency.upper()}"
