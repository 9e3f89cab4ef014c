"""Meters, metered usage and its daily rollups.

The raw event table is partitioned by month in PostgreSQL and written only by
``usage.ingestion.ingest`` with COPY; Django reads it through an unmanaged model. Every page,
metric and job reads ``DailyRollup``, never raw events.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.models import QUANTITY, Account
from revops.audit import audited

# Revenue keeps six decimals per rollup row; presentation rounds to cents.
REVENUE = {"max_digits": 24, "decimal_places": 6}
UNIT_PRICE = {"max_digits": 20, "decimal_places": 8}


@audited()
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


@audited()
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

    # No index of its own: the (account, meter, day) unique index and (account, day) cover it.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="rollups", db_index=False)
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


@audited()
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
    complete_from = models.DateField(
        null=True, blank=True, help_text="Usage files: declares usage complete from this day once imported."
    )
    heartbeat_at = models.DateTimeField(
        null=True, blank=True, help_text="Last sign of life of the worker running it; a stale one may be re-run."
    )

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


# --- Shared metrics and alerts ---------------------------------------------------------


class Band(models.TextChoices):
    """Burn-rate bands (docs/metrics.md#band): what the account team should do next."""

    EXPAND = "expand", "Pitch expansion (≥ 70%)"
    ADOPT = "adopt", "Drive adoption (40–70%)"
    ESCALATE = "escalate", "Escalate (< 40%)"
    NONE = "none", "No commitment in force"


class AccountMetrics(models.Model):
    """One account's shared metrics as of one day, hierarchy rolled up (the account and
    every division below it). Written only by ``usage.signals.services.refresh_metrics``; pages
    read these rows instead of aggregating rollups per request. Ratios are fractions."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="metrics")
    as_of = models.DateField()
    run_rate = models.DecimalField(max_digits=18, decimal_places=2)
    committed_arr = models.DecimalField(max_digits=18, decimal_places=2)
    burn_rate = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    band = models.CharField(max_length=16, choices=Band.choices)
    commit_pacing = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    projected_burn_at_term_end = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    consumption_rate = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    credit_balance = models.DecimalField(max_digits=18, decimal_places=2, null=True)
    credits_run_out_on = models.DateField(null=True)
    ttfbe_days = models.IntegerField(null=True)
    mom_growth = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    expansion_velocity = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    net_new_arr = models.DecimalField(max_digits=18, decimal_places=2)
    revenue_30d = models.DecimalField(max_digits=18, decimal_places=2)
    consumed_in_term = models.DecimalField(max_digits=18, decimal_places=2)
    last_usage_on = models.DateField(null=True)
    meters_active = models.IntegerField()
    workloads = models.IntegerField()
    feature_adoption = models.DecimalField(max_digits=6, decimal_places=4)
    health_score = models.PositiveSmallIntegerField()
    health_components = models.JSONField(default=list)
    # Daily revenue for the trailing 56 days as strings (the book's sparkline).
    trend = models.JSONField(default=list)
    next_gate = models.CharField(max_length=24, blank=True)
    next_gate_on = models.DateField(null=True)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "as_of"], name="accountmetrics_account_as_of")]
        indexes = [models.Index(fields=["as_of", "account"])]
        verbose_name_plural = "account metrics"

    def __str__(self) -> str:
        return f"{self.account} as of {self.as_of}"


class AlertKind(models.TextChoices):
    BELOW_FLOOR = "below_floor", "Burn below the payout floor"
    CLAWBACK_RISK = "clawback_risk", "Clawback risk"
    SUDDEN_DECLINE = "sudden_decline", "Sudden decline"
    PLATEAU = "plateau", "Plateau / stalled adoption"
    NO_FIRST_USAGE = "no_first_usage", "No first billable event"
    INCLUDED_70 = "included_70", "Included volume at 70%"
    INCLUDED_90 = "included_90", "Included volume at 90%"
    CREDITS_LOW = "credits_low", "Credits running out"
    OVER_COMMIT = "over_commit", "Consumption over commit"


class Severity(models.IntegerChoices):
    # Higher sorts first in the triage queue.
    CRITICAL = 4, "Critical"
    HIGH = 3, "High"
    MEDIUM = 2, "Medium"
    LOW = 1, "Low"


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    SNOOZED = "snoozed", "Snoozed"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"
    CLEARED = "cleared", "Cleared (condition ended)"


ACTIVE_ALERT_STATES = (AlertState.OPEN, AlertState.ACKNOWLEDGED, AlertState.SNOOZED)


class Gate(models.TextChoices):
    NONE = "", "—"
    CHECKPOINT_90 = "checkpoint_90", "90-day checkpoint"
    CLAWBACK_12M = "clawback_12m", "12-month clawback"


class Alert(models.Model):
    """A condition on one account that a CSM triages.

    ``condition_active`` is true while the last evaluation still found the condition;
    at most one alert per account and kind has it, so a refresh updates that alert and
    never opens a second one. A resolved or dismissed alert keeps the slot until its
    condition ends, so it does not re-open the next night.
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="alerts")
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    severity = models.PositiveSmallIntegerField(choices=Severity.choices)
    state = models.CharField(max_length=16, choices=AlertState.choices, default=AlertState.OPEN)
    condition_active = models.BooleanField(default=True)
    revenue_at_risk = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    gate = models.CharField(max_length=16, choices=Gate.choices, blank=True)
    gate_on = models.DateField(null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts_owned"
    )
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts_escalated"
    )
    # Set when someone assigns the alert by hand: the nightly sync then stops moving it to
    # whoever is the account's CSM.
    owner_pinned = models.BooleanField(default=False)
    opened_on = models.DateField(help_text="The metrics date on which the condition was first found.")
    last_seen_on = models.DateField()
    cleared_on = models.DateField(null=True, blank=True)
    snoozed_until = models.DateField(null=True, blank=True)
    outcome = models.TextField(blank=True)
    # The inputs behind the alert (burn, thresholds, expected vs actual): shown as "why".
    details = models.JSONField(default=dict)
    opened_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "kind"], condition=Q(condition_active=True), name="alert_one_active_per_kind"
            ),
        ]
        indexes = [
            models.Index(fields=["owner", "state"]),
            models.Index(fields=["state", "-severity", "-revenue_at_risk"]),
            models.Index(fields=["account", "state"]),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.account}"

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_ALERT_STATES

    @property
    def inputs(self) -> list[tuple[str, str]]:
        """The details behind the alert, labelled and formatted for people."""
        from usage.signals.alerts import alert_inputs

        return alert_inputs(self.details)


class AlertEvent(models.Model):
    """One step in an alert's history: who (nobody = the nightly job) did what, and why."""

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now, help_text="When it happened (a refresh: the end of its day).")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=24)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["alert", "at"])]

    def __str__(self) -> str:
        return f"{self.action} on alert {self.alert_id}"


@audited()
class AlertSettings(models.Model):
    """Thresholds for bands and alerts; one row, changed by an admin (System → Alert settings)."""

    expand_band = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.70"))
    escalate_band = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.40"))
    payout_floor = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.25"), help_text="Burn floor at the 90-day checkpoint."
    )
    clawback_floor = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.40"), help_text="Projected 12-month burn floor."
    )
    run_rate_days = models.PositiveSmallIntegerField(default=30, help_text="N in the trailing-N-day run rate.")
    decline_drop = models.DecimalField(
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.40"),
        help_text="A day counts as declined below (1 − this) × its expected level …",
    )
    decline_mad_multiple = models.DecimalField(
        max_digits=5, decimal_places=2, default=Decimal("3"), help_text="… and more than this many robust deviations."
    )
    decline_days = models.PositiveSmallIntegerField(default=3, help_text="Consecutive declined days to alert.")
    decline_min_daily_revenue = models.DecimalField(
        max_digits=12, decimal_places=2, default=Decimal("10"), help_text="Ignore accounts expected below this a day."
    )
    plateau_days = models.PositiveSmallIntegerField(default=28, help_text="Run rate flat for this many days …")
    plateau_tolerance = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.05"), help_text="… within ± this fraction."
    )
    no_usage_days = models.PositiveSmallIntegerField(default=30, help_text="Days after start without usage to alert.")
    included_warn = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.70"))
    included_critical = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.90"))
    credits_low_fraction = models.DecimalField(
        max_digits=5, decimal_places=4, default=Decimal("0.20"), help_text="Credit balance at or below this share."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "alert settings"

    def __str__(self) -> str:
        return "Alert settings"

    @classmethod
    def current(cls) -> AlertSettings:
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class MetricsRefresh(models.Model):
    """One run of the metrics + alerts refresh: what pages show as "as of" and "refreshed"."""

    as_of = models.DateField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField()
    accounts = models.IntegerField()
    alerts_opened = models.IntegerField(default=0)
    alerts_updated = models.IntegerField(default=0)
    alerts_cleared = models.IntegerField(default=0)
    alerts_evaluated = models.BooleanField(
        default=True, help_text="False when a past date was refreshed after a later one (alerts only move forward)."
    )
    seconds = models.DecimalField(max_digits=9, decimal_places=3)

    class Meta:
        ordering = ["-finished_at"]
        get_latest_by = "finished_at"

    def __str__(self) -> str:
        return f"metrics as of {self.as_of} ({self.seconds}s)"


class PortfolioMetrics(models.Model):
    """Company-wide (segment "") and per-segment shared metrics as of one day, each account
    counted once. Written by the refresh; the company metrics page charts these rows."""

    as_of = models.DateField()
    segment = models.CharField(max_length=16, blank=True)
    accounts = models.IntegerField()
    run_rate = models.DecimalField(max_digits=18, decimal_places=2)
    committed_arr = models.DecimalField(max_digits=18, decimal_places=2)
    burn_rate = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    nrr = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    gur = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    median_ttfbe_days = models.DecimalField(max_digits=8, decimal_places=1, null=True)
    expansion_velocity = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    consumption_rate = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    net_new_arr = models.DecimalField(max_digits=18, decimal_places=2)
    realization_committed = models.DecimalField(max_digits=18, decimal_places=2)
    realization_realized = models.DecimalField(max_digits=18, decimal_places=2)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["as_of", "segment"], name="portfoliometrics_as_of_segment")]
        ordering = ["as_of", "segment"]
        verbose_name_plural = "portfolio metrics"

    def __str__(self) -> str:
        return f"{self.segment or 'company'} as of {self.as_of}"

    @property
    def realization_gap(self):
        return self.realization_committed - self.realization_realized


class UsageHistory(models.Model):
    """What revops knows about the completeness of its usage history (one row).

    ``complete_from``: every billable event on or after this day is stored (an import or an
    admin declared it). A contract that starts on or after it has a known time to first
    billable event even when its customer's first event is also the first stored anywhere;
    before it, TTFBE stays unknown. Without a declaration the first stored day is used.
    """

    complete_from = models.DateField(null=True, blank=True, help_text="Usage is complete from this day on.")
    declared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    declared_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=200, blank=True, help_text="The import or person that declared it.")

    class Meta:
        verbose_name_plural = "usage history"

    def __str__(self) -> str:
        return f"complete from {self.complete_from}" if self.complete_from else "completeness not declared"

    @classmethod
    def current(cls) -> UsageHistory:
        return cls.objects.get_or_create(pk=1)[0]


class ExternalDailyAggregate(models.Model):
    """Daily usage totals that an external source (a warehouse) reports per account × meter × day.

    The latest pull of a key replaces its row; ``usage.ingestion.aggregates`` writes the
    difference to the previous value as a rollup delta, so DailyRollup holds events and
    aggregates summed, and a re-pulled day replaces instead of adding. ``source`` is the
    source's name (usage sits below integrations, so no foreign key to it).
    """

    # The natural key is the primary key: no surrogate id, whose index every replaced row would
    # also have to be written into. Day ahead of account and meter: a pull re-reads and replaces
    # the latest days, whose keys are then side by side in the index (and, stored in key order,
    # in the heap) instead of one per leaf page across the whole history.
    pk = models.CompositePrimaryKey("source", "day", "account", "meter")
    source = models.CharField(max_length=100)
    # No indexes of their own (the primary key leads with source) and no database-level
    # foreign keys: a pull resolves every id by a join in its own transaction, and per-row
    # constraint triggers on millions of rows would cost more than the pull itself. Deletes
    # still cascade / protect through Django's collector.
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    meter = models.ForeignKey(Meter, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False)
    day = models.DateField()
    quantity = models.DecimalField(**QUANTITY)
    # What the source says the day's total stands for in events (0 when it does not say).
    event_count = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.source}: {self.account_id}/{self.meter_id}/{self.day}"


class RollupMonthChange(models.Model):
    """The last change to any daily rollup of a month: a number from one sequence, written by
    a statement trigger on usage_dailyrollup (migration 0014). Caches of figures computed
    from rollups key on these (usage.ingestion.changes.rollups_version)."""

    month = models.DateField(primary_key=True)
    seq = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.seq}"
