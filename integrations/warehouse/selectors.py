"""Reads of the warehouse sources and their pulls."""

from __future__ import annotations

from django.db.models import QuerySet

from integrations.models import WarehousePull, WarehouseSource

RECENT_PULLS = 25


def warehouse_source_list() -> QuerySet[WarehouseSource]:
    return WarehouseSource.objects.all()


def recent_pulls(*, source: WarehouseSource, limit: int = RECENT_PULLS) -> list[WarehousePull]:
    return list(WarehousePull.objects.filter(source=source).select_related("requested_by")[:limit])
