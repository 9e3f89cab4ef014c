"""Months as comp periods: the first day of the month stands for it everywhere."""

from __future__ import annotations

import datetime as dt

from comp.models import Statement, StatementStatus
from revops.clock import EARLIEST_DAY, LATEST_DAY, day_in_range


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_end(period: dt.date) -> dt.date:
    return add_months(month_start(period), 1) - dt.timedelta(days=1)


def add_months(day: dt.date, months: int) -> dt.date:
    """The first of the month ``months`` after ``day``'s month."""
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def parse_period(value: str) -> dt.date:
    """'2026-04' → 2026-04-01; ValueError with a clear message otherwise."""
    try:
        year, month = value.split("-")
        if len(year) != 4 or len(month) != 2:
            raise ValueError
        month_start = dt.date(int(year), int(month), 1)
    except ValueError:
        raise ValueError(f"'{value}' is not a month (YYYY-MM)") from None
    if not day_in_range(month_start):
        raise ValueError(f"'{value}' is outside the months revops covers ({EARLIEST_DAY:%Y-%m} to {LATEST_DAY:%Y-%m})")
    return month_start


def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)


def approved_periods(person_ids) -> dict[int, set[dt.date]]:
    """person id → months whose statement finance has approved (frozen)."""
    frozen: dict[int, set[dt.date]] = {}
    rows = Statement.objects.filter(person_id__in=person_ids, status=StatementStatus.APPROVED)
    for person_id, period in rows.values_list("person_id", "period"):
        frozen.setdefault(person_id, set()).add(period)
    return frozen


def open_period(period: dt.date, frozen: set[dt.date]) -> dt.date:
    """The first month from ``period`` on whose statement is not approved: where a line
    computed for ``period`` lands when that month is already frozen."""
    while period in frozen:
        period = add_months(period, 1)
    return period
