"""Import meters (with their price tiers) and product releases from CSV, all-or-nothing.

Meters are upserted by ``key`` and releases by ``name``; every row is checked, and every
reference resolved with one query per table, before anything is written. The columns
and the tier format are documented in docs/imports.md.

A meter's ``unit_price`` is a plain decimal (one open-ended tier) or a tier list
``0-1000:0.002|1000-:0.001``: ``from-to:price`` pieces separated by ``|``, contiguous
from 0, the last one open-ended. Each tier prices the part of the month's volume that
falls inside it (graduated pricing, as ``usage.ingestion.rollups`` computes revenue). When a
stored meter's tiers change, every stored rollup month of that meter is re-priced.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import BinaryIO

from revops.tabular import (
    QUANTITY_DIGITS,
    QUANTITY_PLACES,
    CellError,
    ImportReport,
    Row,
    all_or_nothing,
    parse_decimal,
    read_rows,
    reject_if_any,
)
from usage.ingestion.rollups import reprice_meters
from usage.models import UNIT_PRICE, Meter, MeterTier, ProductRelease

BATCH = 2000
PRICE_PLACES = UNIT_PRICE["decimal_places"]
PRICE_DIGITS = UNIT_PRICE["max_digits"]
_KEY = re.compile(r"^[-a-zA-Z0-9_]+$")
_TIER = re.compile(r"^\s*([^-:\s][^-:]*?)\s*-\s*([^-:]*?)\s*:\s*(.*?)\s*$")

# A tier as stored: (up_to, unit_price); up_to None is the open-ended last tier.
Tiers = list[tuple[Decimal | None, Decimal]]


def _summary(report: ImportReport, *, rows: int, created: int, updated: int) -> ImportReport:
    report.summary = {"created": created, "updated": updated, "unchanged": rows - created - updated}
    return report


# --- Meters --------------------------------------------------------------------------

METER_REQUIRED = ["key", "name", "unit", "unit_price"]
METER_OPTIONAL = ["product_line", "feature"]
METER_FIELDS = ["name", "unit", "product_line", "feature"]


def parse_tiers(text: str) -> Tiers:
    """``0.002`` or ``0-1000:0.002|1000-:0.001`` as tiers; ``CellError`` says what is wrong."""
    if "|" not in text and ":" not in text:
        return [(None, parse_decimal(text, places=PRICE_PLACES, digits=PRICE_DIGITS))]
    tiers: Tiers = []
    expected_from = Decimal(0)
    pieces = text.split("|")
    for number, piece in enumerate(pieces, start=1):
        match = _TIER.match(piece)
        if not match:
            raise CellError(
                f"tier {number} '{piece.strip()[:40]}' is not in the form from-to:price (e.g. 0-1000:0.002)"
            )
        low_text, high_text, price_text = match.groups()
        try:
            low = parse_decimal(low_text, places=QUANTITY_PLACES, digits=QUANTITY_DIGITS)
            high = parse_decimal(high_text, places=QUANTITY_PLACES, digits=QUANTITY_DIGITS) if high_text else None
            price = parse_decimal(price_text, places=PRICE_PLACES, digits=PRICE_DIGITS)
        except CellError as exc:
            raise CellError(f"tier {number}: {exc}") from None
        if low != expected_from:
            where = "start at 0" if number == 1 else f"start where tier {number - 1} ends ({expected_from})"
            raise CellError(f"tier {number} starts at {low_text}; tiers must {where}")
        if high is None and number < len(pieces):
            raise CellError(f"tier {number} is open-ended but is not the last tier")
        if high is None:
            tiers.append((None, price))
            return tiers
        if high <= low:
            raise CellError(f"tier {number} ends at {high_text}, which is not above its start ({low_text})")
        tiers.append((high, price))
        expected_from = high
    raise CellError(f"the last tier must be open-ended (write it as {expected_from}-:price)")


@all_or_nothing
def import_meters(stream: BinaryIO) -> ImportReport:
    """Create or update meters and replace their tiers, or raise ``ImportRejected`` having written nothing."""
    _, rows, report = read_rows(stream, required=METER_REQUIRED, optional=METER_OPTIONAL)
    parsed: dict[str, tuple[dict[str, str], Tiers]] = {}
    lines: dict[str, int] = {}
    for row in rows:
        key = row.text("key", required=True, max_length=Meter._meta.get_field("key").max_length)
        if key and not _KEY.match(key):
            row.error("key", f"'{key}' may contain only letters, digits, '-' and '_'")
        values = {
            "name": row.text("name", required=True, max_length=120),
            "unit": row.text("unit", required=True, max_length=40),
        }
        for name in ("product_line", "feature"):
            if row.has(name):
                values[name] = row.text(name, max_length=80)
        tiers: Tiers = []
        if price := row.text("unit_price", required=True):
            try:
                tiers = parse_tiers(price)
            except CellError as exc:
                row.error("unit_price", str(exc))
        if key in lines:
            row.error("key", f"{key} appears twice (first on line {lines[key]})")
        elif key:
            lines[key] = row.line
        if row.ok:
            parsed[key] = (values, tiers)
    reject_if_any(report)

    existing = {meter.key: meter for meter in Meter.objects.filter(key__in=list(parsed))}
    stored_tiers: dict[int, Tiers] = {}
    for meter_id, up_to, unit_price in (
        MeterTier.objects.filter(meter__in=existing.values())
        .order_by("meter_id", "up_to")  # nulls sort last: the open tier is the last one
        .values_list("meter_id", "up_to", "unit_price")
    ):
        stored_tiers.setdefault(meter_id, []).append((up_to, unit_price))

    created: list[Meter] = []
    changed: list[Meter] = []
    retiered: list[Meter] = []  # stored meters whose tiers are replaced
    for key, (values, tiers) in parsed.items():
        meter = existing.get(key)
        if meter is None:
            created.append(Meter(key=key, **values))
            continue
        before = [getattr(meter, name) for name in METER_FIELDS]
        for name, value in values.items():
            setattr(meter, name, value)
        fields_changed = [getattr(meter, name) for name in METER_FIELDS] != before
        tiers_changed = stored_tiers.get(meter.pk, []) != tiers
        if fields_changed:
            changed.append(meter)
        if tiers_changed:
            retiered.append(meter)
    Meter.objects.bulk_create(created, batch_size=BATCH)
    Meter.objects.bulk_update(changed, METER_FIELDS, batch_size=BATCH)
    MeterTier.objects.filter(meter__in=retiered).delete()
    MeterTier.objects.bulk_create(
        [
            MeterTier(meter=meter, up_to=up_to, unit_price=unit_price)
            for meter in [*created, *retiered]
            for up_to, unit_price in parsed[meter.key][1]
        ],
        batch_size=BATCH,
    )
    # Revenue of stored rollups follows the new tiers (in this transaction: all or nothing).
    reprice_meters([meter.pk for meter in retiered])
    updated = len({meter.pk for meter in [*changed, *retiered]})
    return _summary(report, rows=len(parsed), created=len(created), updated=updated)


# --- Releases ------------------------------------------------------------------------

RELEASE_REQUIRED = ["date", "name"]
RELEASE_OPTIONAL = ["meters", "notes"]


@dataclass
class _Release:
    row: Row
    released_on: dt.date | None
    notes: str | None  # None: no notes column, the stored notes stay
    meters: list[str] | None  # None: no meters column, the stored meters stay


@all_or_nothing
def import_releases(stream: BinaryIO) -> ImportReport:
    """Create or update product releases, or raise ``ImportRejected`` having written nothing."""
    _, rows, report = read_rows(stream, required=RELEASE_REQUIRED, optional=RELEASE_OPTIONAL)
    parsed: dict[str, _Release] = {}
    for row in rows:
        name = row.text("name", required=True, max_length=ProductRelease._meta.get_field("name").max_length)
        release = _Release(
            row,
            released_on=row.date("date", required=True),
            notes=row.text("notes") if row.has("notes") else None,
            meters=list(dict.fromkeys(k.strip() for k in row.text("meters").split("|") if k.strip()))
            if row.has("meters")
            else None,
        )
        if name in parsed:
            row.error("name", f"'{name}' appears twice (first on line {parsed[name].row.line})")
        elif name:
            parsed[name] = release

    meters = dict(
        Meter.objects.filter(key__in={key for r in parsed.values() for key in r.meters or []}).values_list("key", "id")
    )
    for release in parsed.values():
        unknown = [key for key in release.meters or [] if key not in meters]
        if unknown:
            names = ", ".join(f"'{key}'" for key in unknown)
            release.row.error("meters", f"unknown meter{'s' if len(unknown) > 1 else ''} {names} (import meters first)")
    reject_if_any(report)

    existing = {release.name: release for release in ProductRelease.objects.filter(name__in=list(parsed))}
    Link = ProductRelease.meters.through
    stored_links: dict[int, set[int]] = {}
    for release_id, meter_id in Link.objects.filter(productrelease__in=existing.values()).values_list(
        "productrelease_id", "meter_id"
    ):
        stored_links.setdefault(release_id, set()).add(meter_id)

    created: list[ProductRelease] = []
    changed: list[ProductRelease] = []
    relinked: list[ProductRelease] = []  # stored releases whose meters are replaced
    for name, release in parsed.items():
        stored = existing.get(name)
        if stored is None:
            created.append(ProductRelease(name=name, released_on=release.released_on, notes=release.notes or ""))
            continue
        before = (stored.released_on, stored.notes)
        stored.released_on = release.released_on
        if release.notes is not None:
            stored.notes = release.notes
        if (stored.released_on, stored.notes) != before:
            changed.append(stored)
        if release.meters is not None and {meters[key] for key in release.meters} != stored_links.get(stored.pk, set()):
            relinked.append(stored)
    ProductRelease.objects.bulk_create(created, batch_size=BATCH)
    ProductRelease.objects.bulk_update(changed, ["released_on", "notes"], batch_size=BATCH)
    Link.objects.filter(productrelease__in=relinked).delete()
    Link.objects.bulk_create(
        [
            Link(productrelease_id=release.pk, meter_id=meters[key])
            for release in [*created, *relinked]
            for key in parsed[release.name].meters or []
        ],
        batch_size=BATCH,
    )
    updated = len({release.pk for release in [*changed, *relinked]})
    return _summary(report, rows=len(parsed), created=len(created), updated=updated)
