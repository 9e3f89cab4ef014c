"""Today, as the product counts days: UTC calendar dates (storage and statements are UTC)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def today_utc() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def yesterday_utc() -> dt.date:
    """The last complete UTC day: what the nightly jobs compute as of."""
    return today_utc() - dt.timedelta(days=1)
