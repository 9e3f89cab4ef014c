"""Writes for people and the platform."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from revops.models import BeatTick
from revops.selectors import BEAT_TICK_NAME


def beat_tick_record(*, at: dt.datetime | None = None) -> dt.datetime:
    at = at or timezone.now()
    BeatTick.objects.update_or_create(name=BEAT_TICK_NAME, defaults={"ticked_at": at})
    return at
