"""Compensation: versioned plans, assignments, an append-only ledger and statements.

The ledger is the only record of money owed: every run appends lines, never edits them
(a database trigger refuses UPDATE and DELETE), and a correction is a new line. A
statement is a person's lines for one month plus its approval; approving freezes it, and
anything that changes later lands as an adjustment in the next open month.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import F, Q

from accounts.models import Account
from revops.audit import audited

MONEY = {"max_digits": 16, "decimal_places": 2}


class PlanType(models.TextChoices):
    LAND = "land", "Land (new logo)"
    EXPAND = "expand", "Expand (consumption)"
    SPIFF = "spiff", "SPIFF"
    CS = "cs", "Customer success (NRR)"
    PILOT = "pilot", "Pilot (expansion bonus)"
    DRAW = "draw", "Bridge draw"


# TRUNCATE fires no row trigger, so append-only tables refuse it with a statement trigger.
# Only a connection that says revops.allow_truncate=on may (the test suite's, to flush).
NO_TRUNCATE = (
    "IF current_setting('revops.allow_truncate', true) = 'on' THEN RETURN NULL; END IF; "
    "RAISE EXCEPTION 'pgtrigger: % is append-only and cannot be truncated', TG_TABLE_NAME;"
)


@audited()
class Plan(models.Model):
    name = models.CharField(max_length=120, unique=True)
    type = models.CharField(max_length=16, choices=PlanType.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PlanVersion(models.Model):
    """The plan's parameters from ``effective_from`` on (until the next version starts).

    Parameters are validated by ``comp.plans`` for the plan's type and never change once
    written: a new document makes a new version, so what was computed under an old one
    can always be explained with the numbers it used.
    """

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="versions")
    version = models.PositiveIntegerField()
    effective_from = models.DateField()
    parameters = models.JSONField()
    source = models.CharField(max_length=200, blank=True, help_text="File or page the version came from.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["plan", "effective_from"]
        constraints = [
            models.UniqueConstraint(fields=["plan", "version"], name="planversion_unique_number"),
            models.UniqueConstraint(fields=["plan", "effective_from"], name="planversion_unique_start"),
        ]
        triggers = [
            pgtrigger.Protect(name="planversion_immutable", operation=pgtrigger.Update | pgtrigger.Delete),
            pgtrigger.Trigger(
                name="planversion_no_truncate",
                when=pgtrigger.Before,
                operation=pgtrigger.Truncate,
                level=pgtrigger.Statement,
                func=NO_TRUNCATE,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plan} v{self.version} (from {self.effective_from})"


class QuotaPeriod(models.TextChoices):
    MONTH = "month", "Monthly"
    QUARTER = "quarter", "Quarterly"
    YEAR = "year", "Yearly"


@audited()
class Assignment(models.Model):
    """A person on a plan, with a quota per period, from ``start_on`` to ``end_on``."""

    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comp_assignments")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="assignments")
    start_on = models.DateField()
    end_on = models.DateField(null=True, blank=True)
    quota = models.DecimalField(**MONEY, default=0)
    quota_period = models.CharField(max_length=8, choices=QuotaPeriod.choices, default=QuotaPeriod.QUARTER)
    # Share of quota by quarter of tenure (from the person's started_on): [0.25, 0.5, 0.75, 1].
    ramp_relief = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["person", "start_on"]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_on__isnull=True) | Q(end_on__gte=F("start_on")), name="assignment_ends_after_start"
            ),
            models.CheckConstraint(condition=Q(quota__gte=0), name="assignment_quota_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.person} on {self.plan} from {self.start_on}"


class LineKind(models.TextChoices):
    COMMISSION = "commission", "Commission"
    ACCELERATOR = "accelerator", "Accelerator"
    SPIFF = "spiff", "SPIFF"
    BONUS = "bonus", "Bonus"
    DRAW = "draw", "Draw"
    DRAW_RECOVERY = "draw_recovery", "Draw recovery"
    HOLD = "hold", "Held"
    RELEASE = "release", "Released"
    CLAWBACK = "clawback", "Clawback"
    TRUE_UP = "true_up", "True-up"
    ADJUSTMENT = "adjustment", "Adjustment"


# Lines that move money to or from the person; a hold only records money kept back.
PAYABLE_KINDS = frozenset(set(LineKind.values) - {LineKind.HOLD})


class CompRun(models.Model):
    """One computation of one month (``manage.py run_comp``, the monthly job)."""

    period = models.DateField(help_text="First day of the month computed.")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    lines_added = models.IntegerField(default=0)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"comp run for {self.period:%Y-%m}"


class LedgerLine(models.Model):
    """One amount owed to (or taken back from) a person, with everything that produced it.

    ``key`` names what the amount is for (a deal's signature share, a quarter's
    accelerator, a gate's hold…). A run computes what each key should total and appends
    the difference, so re-running adds nothing and late usage becomes a true-up in the
    open month. Rows are never updated or deleted (database trigger).
    """

    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger_lines")
    period = models.DateField(help_text="First day of the month the line belongs to.")
    plan_version = models.ForeignKey(PlanVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(Account, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=16, choices=LineKind.choices)
    key = models.CharField(max_length=200)
    amount = models.DecimalField(**MONEY)
    inputs = models.JSONField(default=dict)
    explanation = models.TextField(blank=True)
    run = models.ForeignKey(CompRun, null=True, blank=True, on_delete=models.PROTECT, related_name="lines")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["period", "person", "kind", "id"]
        indexes = [
            models.Index(fields=["person", "period"]),
            models.Index(fields=["person", "key"]),
        ]
        triggers = [
            pgtrigger.Protect(name="ledgerline_append_only", operation=pgtrigger.Update | pgtrigger.Delete),
            # TRUNCATE fires no row trigger: without this, TRUNCATE … CASCADE emptied the
            # ledger and its inquiries.
            pgtrigger.Trigger(
                name="ledgerline_no_truncate",
                when=pgtrigger.Before,
                operation=pgtrigger.Truncate,
                level=pgtrigger.Statement,
                func=NO_TRUNCATE,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} for {self.person} ({self.period:%Y-%m})"


class StatementStatus(models.TextChoices):
    OPEN = "open", "Open"
    APPROVED = "approved", "Approved"


@audited()
class Statement(models.Model):
    """A person's month: open until finance approves it, then frozen."""

    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="statements")
    period = models.DateField()
    status = models.CharField(max_length=12, choices=StatementStatus.choices, default=StatementStatus.OPEN)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    # Totals at approval, so the frozen statement reads the same forever.
    approved_totals = models.JSONField(default=dict, blank=True)
    paid_on = models.DateField(null=True, blank=True, help_text="The day payroll paid the approved statement.")
    paid_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-period", "person"]
        constraints = [models.UniqueConstraint(fields=["person", "period"], name="statement_person_period")]

    def __str__(self) -> str:
        return f"{self.person} {self.period:%Y-%m} ({self.status})"


@audited()
class Inquiry(models.Model):
    """A question an AE raises on one line; finance answers (with an adjustment if needed)."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ANSWERED = "answered", "Answered"

    line = models.ForeignKey(LedgerLine, on_delete=models.PROTECT, related_name="inquiries")
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "inquiries"

    def __str__(self) -> str:
        return f"Inquiry on line {self.line_id}"


class InquiryMessage(models.Model):
    inquiry = models.ForeignKey(Inquiry, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    body = models.TextField()
    adjustment = models.ForeignKey(LedgerLine, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"Message on inquiry {self.inquiry_id}"


class Attainment(models.Model):
    """How far a person got towards quota in a month's quota period, as the last run saw it
    (the statement's attainment and tier). Rewritten by every run; the money is in the ledger."""

    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attainments")
    period = models.DateField(help_text="The month computed.")
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="attainments")
    plan_version = models.ForeignKey(PlanVersion, on_delete=models.PROTECT, related_name="+")
    quota_period_start = models.DateField()
    quota_period_end = models.DateField()
    credited = models.DecimalField(**MONEY)
    quota = models.DecimalField(**MONEY)
    ramp_share = models.DecimalField(max_digits=5, decimal_places=4)
    effective_quota = models.DecimalField(**MONEY)
    attainment = models.DecimalField(max_digits=12, decimal_places=4, null=True)
    multiplier = models.DecimalField(max_digits=6, decimal_places=3, help_text="The tier reached.")
    inputs = models.JSONField(default=dict)

    class Meta:
        ordering = ["person", "period"]
        constraints = [
            models.UniqueConstraint(fields=["person", "period", "assignment"], name="attainment_person_period_plan")
        ]

    def __str__(self) -> str:
        return f"{self.person} {self.period:%Y-%m}: {self.attainment}"


@audited()
class PlanDraft(models.Model):
    """A plan document finance is trying out (``comp.whatif``): plan versions only, checked
    like an import but stored as text, never as versions, until it is published."""

    title = models.CharField(max_length=120)
    document = models.TextField(help_text="YAML or JSON: plans: (one version per plan), no assignments.")
    based_on = models.ForeignKey(Plan, null=True, blank=True, on_delete=models.SET_NULL, related_name="drafts")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-updated_at", "-pk"]

    def __str__(self) -> str:
        return self.title


class WhatIfRun(models.Model):
    """One replay of a draft over the last ``months`` complete months: a Celery job whose
    result (Decimal amounts as strings) is kept; nothing it computes reaches the ledger."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Done"
        FAILED = "failed", "Failed"

    draft = models.ForeignKey(PlanDraft, on_delete=models.CASCADE, related_name="runs")
    document = models.TextField(help_text="The draft's document when the run was asked for.")
    months = models.PositiveSmallIntegerField()
    first_month = models.DateField()
    last_month = models.DateField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    months_done = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    result = models.JSONField(default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(months__gte=1) & Q(months__lte=24), name="whatifrun_months_1_to_24")
        ]

    def __str__(self) -> str:
        return f"what-if of {self.draft} over {self.months} months ({self.status})"
