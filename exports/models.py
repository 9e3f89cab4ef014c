"""Export targets (a folder or an S3-compatible bucket), their runs and the partitions written.

A target receives day partitions of the BI tables (exports.selectors.TABLES) as CSV and/or
Parquet: ``<prefix>/<table>/dt=YYYY-MM-DD/part-0000.<ext>`` and a ``_manifest.json``.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from revops.models import TimedRun


class Format(models.TextChoices):
    CSV = "csv", "CSV"
    PARQUET = "parquet", "Parquet"


class Schedule(models.TextChoices):
    DAILY = "daily", "Daily (yesterday, and days whose data changed)"
    MANUAL = "manual", "Only when run by hand"


class ExportTarget(models.Model):
    name = models.CharField(max_length=100, unique=True)
    # file:///abs/folder or s3://bucket/prefix?endpoint=http://host:9000&region=us-east-1
    url = models.CharField(max_length=500)
    credentials = models.TextField(blank=True, help_text="Fernet-encrypted JSON (exports.crypto).")
    formats = ArrayField(models.CharField(max_length=8, choices=Format.choices), default=list)
    tables = ArrayField(models.CharField(max_length=32), default=list)
    schedule = models.CharField(max_length=8, choices=Schedule.choices, default=Schedule.DAILY)
    # {table: "YYYY-MM-DD"}: the newest day written for each table.
    last_exported = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def last_exported_text(self) -> str:
        """``table: day`` for each table written so far, or "never"."""
        if not self.last_exported:
            return "never"
        return ", ".join(f"{table} {day}" for table, day in sorted(self.last_exported.items()))


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class ExportRun(TimedRun):
    target = models.ForeignKey(ExportTarget, on_delete=models.CASCADE, related_name="runs")
    # {table: ["YYYY-MM-DD", ...]}: the partitions this run writes.
    plan = models.JSONField(default=dict)
    reason = models.CharField(max_length=200, blank=True, help_text="Why it ran: scheduled, by hand, data changed.")
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.QUEUED)
    # {table: {"partitions": n, "rows": n, "files": n, "bytes": n}}
    counts = models.JSONField(default=dict)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target", "-created_at"])]

    def __str__(self) -> str:
        return f"Export run {self.pk} to {self.target}"

    @property
    def partitions_planned(self) -> int:
        return sum(len(days) for days in self.plan.values())

    @property
    def days_text(self) -> str:
        days = sorted({day for days in self.plan.values() for day in days})
        if not days:
            return "no days"
        return days[0] if len(days) == 1 else f"{days[0]} to {days[-1]} ({len(days)} days)"


class ExportedPartition(models.Model):
    """One day of one table as last written to a target, with the data's fingerprint then:
    the daily task re-exports a day when its fingerprint in the database differs."""

    target = models.ForeignKey(ExportTarget, on_delete=models.CASCADE, related_name="partitions")
    table = models.CharField(max_length=32)
    day = models.DateField()
    fingerprint = models.CharField(max_length=200)
    rows = models.BigIntegerField()
    bytes = models.BigIntegerField()
    exported_at = models.DateTimeField()
    run = models.ForeignKey(ExportRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["target", "table", "day"], name="exportedpartition_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.table} dt={self.day} → {self.target_id}"
