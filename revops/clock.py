"""Today, as the product counts days: UTC calendar dates (storage and statements are UTC)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def now() -> dt.datetime:
    """The current instant. Code that schedules by it (webhook retries) calls this, so a test
    can move time by replacing ``revops.clock.now``."""
    return timezone.now()


def today_utc() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def yesterday_utc() -> dt.date:
    """The last complete UTC day: what the nightly jobs compute as of."""
    return today_utc() - dt.timedelta(days=1)


# The days any figure can be about: a date outside them in a request is a typo (or a probe),
# and date arithmetic near year 1 or 9999 overflows.
EARLIEST_DAY = dt.date(2000, 1, 1)
LATEST_DAY = dt.date(2100, 12, 31)


def day_in_range(day: dt.date) -> bool:
    return EARLIEST_DAY <= day <= LATEST_DAY


def check_day_in_range(day: dt.date) -> None:
    """A form validator: a clear error for a day outside EARLIEST_DAY … LATEST_DAY."""
    from django.core.exceptions import ValidationError

    if not day_in_range(day):
        raise ValidationError(f"{day} is outside the days revops covers ({EARLIEST_DAY} to {LATEST_DAY}).")
