"""CRM connections: credentials (encrypted), mappings, cursors, sync runs and their log.

The CRM owns accounts, hierarchy, owners and contracts; revops owns usage and its metrics,
which a write-back run pushes to custom fields on the CRM's accounts.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Provider(models.TextChoices):
    SALESFORCE = "salesforce", "Salesforce"
    HUBSPOT = "hubspot", "HubSpot"


class Connection(models.Model):
    name = models.CharField(max_length=100)
    provider = models.CharField(max_length=16, choices=Provider.choices)
    # Salesforce: the instance URL (https://acme.my.salesforce.com); HubSpot: the API host.
    base_url = models.URLField(max_length=300)
    # HubSpot's portal (hub) id, for record links; blank for Salesforce.
    portal_id = models.CharField(max_length=20, blank=True)
    # A PEM file of the certificate authority to trust instead of the system's (the local
    # fake servers' own certificate); blank: the system's store.
    ca_file = models.CharField(max_length=500, blank=True)
    credentials = models.TextField(blank=True, help_text="Fernet-encrypted JSON (integrations.crypto).")
    mapping = models.JSONField(default=dict)
    cursors = models.JSONField(default=dict, help_text="Per object, the last modification time seen.")
    # The newest account audit event when the last read was applied: later edits made in
    # revops (not by a sync) are what "edited in both" compares against.
    audit_watermark = models.BigIntegerField(default=0)
    schedule_minutes = models.PositiveIntegerField(default=60, help_text="Read sync every N minutes (0: off).")
    writeback_enabled = models.BooleanField(default=True)
    last_read_at = models.DateTimeField(null=True, blank=True)
    last_writeback_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class RunKind(models.TextChoices):
    READ = "read", "Read from the CRM"
    WRITEBACK = "writeback", "Write back to the CRM"


class RunState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class SyncRun(models.Model):
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    dry_run = models.BooleanField(default=False, help_text="A preview: everything is checked, nothing is written.")
    full = models.BooleanField(default=False, help_text="Ignore the cursors and read every record.")
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.QUEUED)
    stage = models.CharField(max_length=100, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    # {"account": {"read": n, "created": n, "updated": n, "unchanged": n, "rejected": n, ...}, ...}
    counts = models.JSONField(default=dict)
    rate_limit_waits = models.PositiveIntegerField(default=0)
    cursors_before = models.JSONField(default=dict)
    cursors_after = models.JSONField(default=dict)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["connection", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} run {self.pk} of {self.connection}"

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class Outcome(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Updated"
    REJECTED = "rejected", "Rejected"
    CONFLICT = "conflict", "Edited in both"
    DELETED = "deleted", "Deleted in the CRM"
    MERGED = "merged", "Merged in the CRM"
    WRITTEN = "written", "Written to the CRM"


class RunLogEntry(models.Model):
    """One record of a run that changed or was refused ("unchanged" is only counted)."""

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="entries")
    object_type = models.CharField(max_length=20)
    record_id = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    reason = models.TextField(blank=True)
    changes = models.JSONField(default=dict)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["run", "outcome"])]

    def __str__(self) -> str:
        return f"{self.object_type} {self.record_id}: {self.outcome}"

    @property
    def changes_text(self) -> str:
        """``field: before → after`` (or the value written), blanks said as such, never "None"."""
        parts = []
        for name, value in self.changes.items():
            if isinstance(value, list) and len(value) == 2:
                before, after = ("(blank)" if v in (None, "") else v for v in value)
                parts.append(f"{name}: {before} → {after}")
            else:
                parts.append(f"{name}: {'(blank)' if value in (None, '') else value}")
        return "; ".join(parts)


class ExternalRecord(models.Model):
    """A CRM record a connection has seen, and the revops row it became."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="records")
    object_type = models.CharField(max_length=20)  # account, contract, user
    crm_id = models.CharField(max_length=100)
    local_id = models.BigIntegerField(null=True, blank=True)
    modstamp = models.CharField(max_length=40, blank=True, help_text="The CRM's modification time last applied.")
    synced_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.CharField(max_length=100, blank=True)
    # The values last written back to the CRM (text), so only changes are sent.
    pushed = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "object_type", "crm_id"], name="externalrecord_unique")
        ]
        indexes = [models.Index(fields=["connection", "object_type", "local_id"])]

    def __str__(self) -> str:
        return f"{self.object_type} {self.crm_id}"
