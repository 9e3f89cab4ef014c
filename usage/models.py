"""Meters, metered usage and its daily rollups.

The raw event table is partitioned by month in PostgreSQL and written only by
``usage.ingest`` with COPY; Django reads it through an unmanaged model. Every page,
metric and job reads ``DailyRollup``, never raw events.
"""

from __future__ import annotations

import pghistory
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from accounts.models import QUANTITY, Account

# Revenue keeps six decimals per rollup row; presentation rounds to cents.
REVENUE = {"max_digits": 24, "decimal_places": 6}
UNIT_PRICE = {"max_digits": 20, "decimal_places": 8}


@pghistory.track()
class Meter(models.Model):
    """A billable unit. Its price is one or more tiers over the month's volume per account."""

    key = models.SlugField(max_length=64, unique=True, help_text="What events name in `meter` (CloudEvents `type`).")
    name = models.CharField(max_length=120)
    unit = models.CharField(max_length=40, help_text="e.g. request, 1K tokens, GB, minute")
    product_line = models.CharField(max_length=80, blank=True)
    feature = models.CharField(max_length=80, blank=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


@pghistory.track()
class MeterTier(models.Model):
    """Price per unit for the month's volume up to ``up_to`` (open-ended when null).

    A flat price is one open-ended tier. Tiers of a meter are contiguous from zero.
    """

    meter = models.ForeignKey(Meter, on_delete=models.CASCADE, related_name="tiers")
    up_to = models.DecimalField(**QUANTITY, null=True, blank=True)
    unit_price = models.DecimalField(**UNIT_PRICE)

    class Meta:
        ordering = ["meter", models.F("up_to").asc(nulls_last=True)]
        constraints = [
            models.UniqueConstraint(fields=["meter", "up_to"], name="metertier_unique_bound"),
            models.UniqueConstraint(fields=["meter"], condition=Q(up_to__isnull=True), name="metertier_one_open_tier"),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="metertier_price_not_negative"),
            models.CheckConstraint(condition=Q(up_to__isnull=True) | Q(up_to__gt=0), name="metertier_bound_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.meter.key} ≤ {self.up_to or '∞'} @ {self.unit_price}"


class UsageEvent(models.Model):
    """One metered event (read-only view of the partitioned ``usage_event`` table)."""

    key = models.UUIDField(primary_key=True, help_text="md5(source, id): the deduplication key.")
    source = models.CharField(max_length=200)
    event_id = models.CharField(max_length=200)
    account = models.ForeignKey(Account, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    meter = models.ForeignKey(Meter, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+")
    occurred_at = models.DateTimeField()
    quantity = models.DecimalField(**QUANTITY)
    properties = models.JSONField(default=dict)
    received_at = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "usage_event"

    def __str__(self) -> str:
        return f"{self.source}/{self.event_id}"


class DailyRollup(models.Model):
    """Quantity, priced revenue and event count per account × meter × day (UTC)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="rollups")
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="rollups")
    day = models.DateField()
    quantity = models.DecimalField(**QUANTITY)
    revenue = models.DecimalField(**REVENUE)
    event_count = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "meter", "day"], name="rollup_account_meter_day")]
        indexes = [models.Index(fields=["account", "day"]), models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.account_id}/{self.meter_id}/{self.day}"


class FirstSeenKind(models.TextChoices):
    METER = "meter", "Meter"
    WORKLOAD = "workload", "Workload"
    REGION = "region", "Region"


class FirstSeen(models.Model):
    """The first day an account used a meter, a workload or a region (SPIFF triggers, adoption)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="first_seen")
    kind = models.CharField(max_length=16, choices=FirstSeenKind.choices)
    value = models.CharField(max_length=200)
    first_day = models.DateField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "kind", "value"], name="firstseen_unique")]

    def __str__(self) -> str:
        return f"{self.account_id} {self.kind}={self.value} since {self.first_day}"


class QuarantinedEvent(models.Model):
    """An event whose account or meter is unknown: kept, with the reason, until replayed."""

    source = models.CharField(max_length=200)
    event_id = models.CharField(max_length=200)
    account_ref = models.CharField(max_length=200, help_text="The account external id as sent.")
    meter_ref = models.CharField(max_length=200, help_text="The meter key as sent.")
    occurred_at = models.DateTimeField()
    quantity = models.DecimalField(**QUANTITY)
    properties = models.JSONField(default=dict)
    reason = models.CharField(max_length=200)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["received_at"]
        constraints = [models.UniqueConstraint(fields=["source", "event_id"], name="quarantine_source_id")]
        indexes = [models.Index(fields=["account_ref"]), models.Index(fields=["meter_ref"])]

    def __str__(self) -> str:
        return f"{self.source}/{self.event_id}: {self.reason}"


@pghistory.track()
class ProductRelease(models.Model):
    """A dated product change, for attributing usage changes to releases."""

    released_on = models.DateField()
    name = models.CharField(max_length=200, unique=True)
    meters = models.ManyToManyField(Meter, blank=True, related_name="releases")
    features = ArrayField(models.CharField(max_length=80), default=list, blank=True)
    notes = models.TextField(blank=True)

    class Meta:
        ordering = ["-released_on"]

    def __str__(self) -> str:
        return f"{self.name} ({self.released_on})"


class ApiKey(models.Model):
    """A bearer key for the HTTP API. Only a SHA-256 of the key is stored."""

    class Scope(models.TextChoices):
        EVENTS_WRITE = "events:write", "Write usage events"
        READ = "read", "Read metrics, alerts and forecasts"

    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=12, db_index=True, help_text="First characters, to recognise a key.")
    hashed_key = models.CharField(max_length=64, unique=True)
    scopes = ArrayField(models.CharField(max_length=32, choices=Scope.choices))
    rate_limit_per_minute = models.PositiveIntegerField(default=600)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ImportKind(models.TextChoices):
    USAGE = "usage", "Usage events"
    PEOPLE = "people", "People"
    ACCOUNTS = "accounts", "Accounts"
    CONTRACTS = "contracts", "Contracts"
    OWNERS = "owners", "Owners"
    METERS = "meters", "Meters"
    RELEASES = "releases", "Releases"


class ImportJob(models.Model):
    """One uploaded or command-line file import, all-or-nothing, with its report."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Imported"
        FAILED = "failed", "Rejected"

    kind = models.CharField(max_length=16, choices=ImportKind.choices)
    file_name = models.CharField(max_length=255)
    path = models.CharField(max_length=500, help_text="Where the uploaded file is kept while it is processed.")
    sha256 = models.CharField(max_length=64)
    size_bytes = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    bytes_done = models.BigIntegerField(default=0, help_text="Bytes of the file read so far (progress).")
    rows_total = models.BigIntegerField(null=True, blank=True)
    summary = models.JSONField(default=dict, help_text="Counts: created/updated or accepted/duplicates/…")
    errors = models.JSONField(default=list, help_text="Up to 1,000 problems: line, column, reason.")
    error_count = models.BigIntegerField(default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} import of {self.file_name} ({self.status})"


class ImportedUsageFile(models.Model):
    """Checksums of usage files already imported: an identical file is never imported twice.

    Event keys expire with their raw events, so without this a backfill file re-imported
    after the retention window would count its events again.
    """

    sha256 = models.CharField(max_length=64, primary_key=True)
    rows = models.BigIntegerField()
    accepted = models.BigIntegerField()
    imported_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.sha256[:12]}… ({self.rows} rows, {self.imported_at:%Y-%m-%d})"
