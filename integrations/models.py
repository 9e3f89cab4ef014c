"""CRM connections: credentials (encrypted), mappings, cursors, sync runs and their log.

The CRM owns accounts, hierarchy, owners and contracts; revops owns usage and its metrics,
which a write-back run pushes to custom fields on the CRM's accounts.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from revops.models import TimedRun


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


class SyncRun(TimedRun):
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

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["connection", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} run {self.pk} of {self.connection}"


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


# --- Warehouse sources (integrations.warehouse) ----------------------------------------------


class WarehouseDialect(models.TextChoices):
    POSTGRESQL = "postgresql", "PostgreSQL"
    SNOWFLAKE = "snowflake", "Snowflake"
    BIGQUERY = "bigquery", "BigQuery"


class WarehouseMode(models.TextChoices):
    AGGREGATES = "aggregates", "Daily aggregates (account, meter, day, quantity)"
    EVENTS = "events", "Usage events (id, account, meter, time, quantity)"


class CursorKind(models.TextChoices):
    TIMESTAMP = "timestamp", "Timestamp (e.g. updated_at)"
    ID = "id", "Increasing id"


class WarehouseSource(models.Model):
    """A SQL query (or a table) in a customer's warehouse that usage is pulled from."""

    name = models.CharField(max_length=100, unique=True, help_text="Also the events' source (their dedupe scope).")
    dialect = models.CharField(max_length=16, choices=WarehouseDialect.choices)
    # The SQLAlchemy URL, password included: Fernet-encrypted JSON {"url": ...} (integrations.crypto).
    url_encrypted = models.TextField()
    # The URL with its password masked, for pages.
    url_display = models.CharField(max_length=500)
    mode = models.CharField(max_length=16, choices=WarehouseMode.choices, default=WarehouseMode.AGGREGATES)
    query = models.TextField(blank=True, help_text="One SELECT; blank when a table is given.")
    table = models.CharField(max_length=300, blank=True, help_text="schema.table, when no query is given.")
    # Revops field → the query's column (account, meter, day, quantity, event_count | id, time, …).
    mapping = models.JSONField(default=dict)
    cursor_column = models.CharField(max_length=100, blank=True, help_text="Blank: every pull reads everything.")
    cursor_kind = models.CharField(max_length=16, choices=CursorKind.choices, default=CursorKind.TIMESTAMP)
    # Timestamps: seconds re-read behind the cursor (late rows); ids: ids re-read behind it.
    lookback = models.BigIntegerField(default=2 * 86400)
    last_cursor = models.CharField(max_length=100, blank=True)
    schedule_minutes = models.PositiveIntegerField(default=60, help_text="Pull every N minutes (0: off).")
    last_pull_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class WarehousePull(TimedRun):
    source = models.ForeignKey(WarehouseSource, on_delete=models.CASCADE, related_name="pulls")
    full = models.BooleanField(default=False, help_text="Ignore the cursor and read every row.")
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.QUEUED)
    rows = models.BigIntegerField(default=0)
    # aggregates: {"created", "replaced", "unchanged"}; events: {"accepted", "duplicates", "quarantined"}
    counts = models.JSONField(default=dict)
    rows_per_second = models.FloatField(null=True, blank=True)
    cursor_before = models.CharField(max_length=100, blank=True)
    cursor_after = models.CharField(max_length=100, blank=True)
    # [{"row": n, "column": "quantity", "reason": "..."}] (the first 1,000) and their total.
    errors = models.JSONField(default=list)
    error_count = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["source", "-created_at"])]

    def __str__(self) -> str:
        return f"pull {self.pk} of {self.source}"


# --- Stripe: a billing source (integrations.billing) ------------------------------------------


class UsageMode(models.TextChoices):
    METER_SUMMARIES = "meter_summaries", "Billing meter event summaries (daily)"
    INVOICE_LINES = "invoice_lines", "Invoice line items"


class StripeConnection(models.Model):
    """A Stripe account revops reads customers, usage and billing documents from."""

    name = models.CharField(max_length=100)
    # Blank: Stripe's own (https://api.stripe.com); a local fake server in tests and the demo.
    api_base = models.URLField(max_length=300, blank=True)
    # {"secret_key": "sk_…", "webhook_secret": "whsec_…"}, Fernet-encrypted (integrations.crypto).
    credentials = models.TextField(blank=True)
    metadata_key = models.CharField(
        max_length=40, default="revops_account", help_text="Customer metadata key holding the revops account id."
    )
    match_email_domain = models.BooleanField(default=True, help_text="Else match on the email's domain table.")
    usage_mode = models.CharField(max_length=20, choices=UsageMode.choices, default=UsageMode.METER_SUMMARIES)
    # Stripe meter id (summaries) or price id (invoice lines) → revops meter key.
    meter_map = models.JSONField(default=dict)
    usage_start = models.DateField(help_text="The first day of usage to import.")
    # {"invoices": unix, "credit_notes": unix, "refunds": unix}: the newest creation time applied.
    cursors = models.JSONField(default=dict)
    schedule_minutes = models.PositiveIntegerField(default=60, help_text="Sync every N minutes (0: off).")
    last_sync_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def source(self) -> str:
        """What BillingDocument.source and usage events say for this connection."""
        return f"stripe:{self.pk}"


class StripeRun(TimedRun):
    connection = models.ForeignKey(StripeConnection, on_delete=models.CASCADE, related_name="runs")
    full = models.BooleanField(default=False, help_text="Ignore the cursors and read every document.")
    state = models.CharField(max_length=16, choices=RunState.choices, default=RunState.QUEUED)
    stage = models.CharField(max_length=100, blank=True)
    # {"customers": {"read": n, "metadata": n, "domain": n, "unmatched": n}, "usage": {...}, "invoice": {...}, ...}
    counts = models.JSONField(default=dict)
    retries = models.PositiveIntegerField(default=0, help_text="Calls the client retried (5xx, 409) or waited (429).")
    requests = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["connection", "-created_at"])]

    def __str__(self) -> str:
        return f"Stripe run {self.pk} of {self.connection}"


class MatchedBy(models.TextChoices):
    METADATA = "metadata", "Customer metadata"
    DOMAIN = "domain", "Email domain"
    UNMATCHED = "unmatched", "Unmatched"


class StripeCustomer(models.Model):
    """A Stripe customer, the revops account it is matched to (or why not)."""

    connection = models.ForeignKey(StripeConnection, on_delete=models.CASCADE, related_name="customers")
    customer_id = models.CharField(max_length=100)
    name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=254, blank=True)
    account = models.ForeignKey("accounts.Account", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    matched_by = models.CharField(max_length=16, choices=MatchedBy.choices, default=MatchedBy.UNMATCHED)
    reason = models.CharField(max_length=300, blank=True, help_text="Why it is unmatched.")
    # The day after the last usage day read for it (null: from the connection's usage_start).
    usage_through = models.DateField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["customer_id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "customer_id"], name="stripecustomer_unique"),
        ]

    def __str__(self) -> str:
        return self.customer_id


class BillingDomain(models.Model):
    """Finance's table: customers whose email is at ``domain`` belong to ``account``."""

    connection = models.ForeignKey(StripeConnection, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(max_length=253)
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")

    class Meta:
        ordering = ["domain"]
        constraints = [models.UniqueConstraint(fields=["connection", "domain"], name="billingdomain_unique")]

    def __str__(self) -> str:
        return self.domain


class StripeUsage(models.Model):
    """What was imported for one usage identity (a customer × meter × day, or an invoice line).

    Events are append-only and never negative, so a re-read value is compared with this
    row: more is sent as an adjustment event of the difference (``…:v<n>``), less is kept
    and counted as "lowered" (events cannot take usage away).
    """

    connection = models.ForeignKey(StripeConnection, on_delete=models.CASCADE, related_name="usage")
    key = models.CharField(max_length=300)  # "<meter>:<customer>:<day>" or "<price>:<customer>:<line>"
    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="+")
    meter_key = models.CharField(max_length=64)
    day = models.DateField()
    value = models.DecimalField(max_digits=28, decimal_places=6)
    version = models.PositiveIntegerField(default=1)
    lowered_to = models.DecimalField(max_digits=28, decimal_places=6, null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["connection", "key"], name="stripeusage_unique")]

    def __str__(self) -> str:
        return self.key


class HeldDocument(models.Model):
    """A billing document of an unmatched customer: kept until the customer is matched."""

    connection = models.ForeignKey(StripeConnection, on_delete=models.CASCADE, related_name="held")
    external_id = models.CharField(max_length=200)
    customer_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=16)
    payload = models.JSONField()
    held_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["customer_id", "external_id"]
        constraints = [models.UniqueConstraint(fields=["connection", "external_id"], name="helddocument_unique")]

    def __str__(self) -> str:
        return self.external_id


class WebhookOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    REPLAYED = "replayed", "Already received"
    HELD = "held", "Held (customer unmatched)"
    IGNORED = "ignored", "Not a type revops reads"
    FAILED = "failed", "Failed"


class StripeWebhookEvent(models.Model):
    connection = models.ForeignKey(StripeConnection, on_delete=models.CASCADE, related_name="webhook_events")
    event_id = models.CharField(max_length=100)
    type = models.CharField(max_length=100)
    outcome = models.CharField(max_length=16, choices=WebhookOutcome.choices)
    detail = models.CharField(max_length=300, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["connection", "event_id"], name="stripewebhookevent_unique")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
