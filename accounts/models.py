"""Customer accounts: hierarchy, effective-dated ownership, contracts, activities, plans.

"Account" here always means a customer, never a login (people are ``revops.User``).
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import F, Q

from revops.audit import audited

MONEY = {"max_digits": 16, "decimal_places": 2}
QUANTITY = {"max_digits": 28, "decimal_places": 6}


class Segment(models.TextChoices):
    ENTERPRISE = "enterprise", "Enterprise"
    MID_MARKET = "mid-market", "Mid-market"
    SMB = "smb", "SMB"


class AccountStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    CHURNED = "churned", "Churned"
    PROSPECT = "prospect", "Prospect"


@audited()
class Account(models.Model):
    external_id = models.CharField(max_length=100, unique=True, help_text="The CRM's id; imports match on it.")
    name = models.CharField(max_length=200)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    segment = models.CharField(max_length=16, choices=Segment.choices)
    region = models.CharField(max_length=60, blank=True)
    industry = models.CharField(max_length=80, blank=True)
    status = models.CharField(max_length=16, choices=AccountStatus.choices, default=AccountStatus.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["parent"]), models.Index(fields=["segment"])]
        constraints = [
            models.CheckConstraint(condition=~Q(parent=F("pk")), name="account_not_own_parent"),
        ]

    def __str__(self) -> str:
        return self.name


class OwnerRole(models.TextChoices):
    LAND_AE = "land_ae", "Land AE"
    EXPAND_AE = "expand_ae", "Expand AE / AM"
    CSM = "csm", "CSM"


@audited()
class Ownership(models.Model):
    """Who owned an account in a role, from ``start_on`` to ``end_on`` inclusive (open when null).

    Periods for one account and role never overlap; a database trigger enforces it
    (btree_gist, which an exclusion constraint would need, is not always installed).
    """

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="ownerships")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ownerships")
    role = models.CharField(max_length=16, choices=OwnerRole.choices)
    start_on = models.DateField()
    end_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["account", "role", "start_on"]
        indexes = [models.Index(fields=["person", "role", "start_on"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(end_on__isnull=True) | Q(end_on__gte=F("start_on")), name="ownership_ends_after_start"
            ),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="ownership_no_overlap",
                operation=pgtrigger.Insert | pgtrigger.Update,
                when=pgtrigger.Before,
                func="""
                    -- Serialize writers per account so two concurrent inserts cannot both pass.
                    PERFORM 1 FROM accounts_account WHERE id = NEW.account_id FOR UPDATE;
                    IF EXISTS (
                        SELECT 1 FROM accounts_ownership o
                        WHERE o.account_id = NEW.account_id AND o.role = NEW.role AND o.id <> NEW.id
                          AND daterange(o.start_on, o.end_on, '[]') && daterange(NEW.start_on, NEW.end_on, '[]')
                    ) THEN
                        RAISE EXCEPTION USING
                            ERRCODE = 'exclusion_violation',
                            MESSAGE = format('ownership periods overlap for account %s role %s', NEW.account_id, NEW.role);
                    END IF;
                    RETURN NEW;
                """,
            )
        ]

    def __str__(self) -> str:
        return f"{self.person} {self.role} of {self.account} from {self.start_on}"


class PricingModel(models.TextChoices):
    COMMIT = "commit", "Usage with annual commit"
    HYBRID = "hybrid", "Hybrid (base fee + included volume + overage)"
    CREDITS = "credits", "Prepaid credits"
    MINIMUM = "minimum", "Minimum commit"


@audited()
class Contract(models.Model):
    external_id = models.CharField(max_length=100, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="contracts")
    pricing_model = models.CharField(max_length=16, choices=PricingModel.choices)
    signed_on = models.DateField(help_text="First purchase.")
    start_on = models.DateField()
    end_on = models.DateField()
    committed_arr = models.DecimalField(**MONEY, default=0)
    tcv = models.DecimalField("TCV", **MONEY, default=0)
    included_units = models.DecimalField(**QUANTITY, null=True, blank=True, help_text="Per month (hybrid).")
    included_meter = models.CharField(
        max_length=64, blank=True, help_text="Key of the meter whose quantity the included units count (hybrid)."
    )
    base_fee = models.DecimalField(**MONEY, null=True, blank=True, help_text="Per month (hybrid).")
    credits = models.DecimalField(**MONEY, null=True, blank=True, help_text="Purchased (credit plans).")
    deal_desk_estimate = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Deal desk's first-year consumption estimate."
    )
    ae_estimate = models.DecimalField(**MONEY, null=True, blank=True, help_text="AE's first-year consumption estimate.")
    ramp_days = models.PositiveIntegerField(default=90)
    amends = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="amendments",
        help_text="The contract this one amends or renews.",
    )

    class Meta:
        ordering = ["account", "start_on"]
        indexes = [models.Index(fields=["account", "start_on"])]
        constraints = [
            models.CheckConstraint(condition=Q(end_on__gte=F("start_on")), name="contract_ends_after_start"),
            models.CheckConstraint(
                condition=Q(committed_arr__gte=0) & Q(tcv__gte=0), name="contract_money_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return self.external_id


class ActivityKind(models.TextChoices):
    CALL = "call", "Call"
    MEETING = "meeting", "Meeting"
    EMAIL = "email", "Email"
    QBR = "qbr", "Business review"
    NOTE = "note", "Note"


class Activity(models.Model):
    """A logged customer conversation: the evidence behind patterns in the monthly review."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="activities")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="activities")
    occurred_on = models.DateField()
    kind = models.CharField(max_length=16, choices=ActivityKind.choices)
    notes = models.TextField(blank=True)
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_on", "-id"]
        indexes = [models.Index(fields=["account", "-occurred_on"])]
        verbose_name_plural = "activities"

    def __str__(self) -> str:
        return f"{self.kind} with {self.account} on {self.occurred_on}"


@audited()
class AccountPlan(models.Model):
    """The joint AE/CS plan for an account, reviewed quarterly."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, related_name="plan")
    usage_baseline = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Annualized run rate when the plan was set."
    )
    growth_target = models.DecimalField(
        max_digits=7, decimal_places=4, null=True, blank=True, help_text="Target growth as a fraction (0.25 = 25%)."
    )
    expansion_opportunities = models.TextField(blank=True)
    value_realization = models.TextField("Value-realization strategy", blank=True)
    stakeholders = models.TextField(blank=True)
    risks = models.TextField(blank=True)
    next_review_on = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return f"Plan for {self.account}"


class BillingKind(models.TextChoices):
    INVOICE = "invoice", "Invoice"
    CREDIT_NOTE = "credit_note", "Credit note"
    REFUND = "refund", "Refund"


class BillingStatus(models.TextChoices):
    OPEN = "open", "Open (issued, not paid)"
    PAID = "paid", "Paid"
    VOID = "void", "Void"
    UNCOLLECTIBLE = "uncollectible", "Uncollectible"
    ISSUED = "issued", "Issued"  # credit notes and refunds: in force once issued


class BillingDocument(models.Model):
    """An invoice, credit note or refund of an account, as the billing system has it.

    Billing sources (integrations: Stripe) write these; comp reads them to pay "on paid"
    and to claw back on refunds and credit notes. ``amount`` is what the document is for,
    in the billing currency, always positive; ``kind`` says which way it moves money.
    """

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="billing_documents")
    source = models.CharField(max_length=100, help_text="Which billing system (e.g. stripe:<connection id>).")
    external_id = models.CharField(max_length=200, help_text="The billing system's id (in_…, cn_…, re_…).")
    kind = models.CharField(max_length=16, choices=BillingKind.choices)
    status = models.CharField(max_length=16, choices=BillingStatus.choices)
    currency = models.CharField(max_length=3, default="usd")
    amount = models.DecimalField(**MONEY)
    # The usage period an invoice bills (a credit note or refund: its invoice's period).
    period_start = models.DateField(null=True, blank=True)
    period_end = models.DateField(null=True, blank=True)
    issued_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    # A credit note's or refund's invoice (its external id), when the billing system says.
    invoice_external_id = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["account", "issued_at"]
        indexes = [
            models.Index(fields=["account", "kind", "issued_at"]),
            models.Index(fields=["invoice_external_id"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["source", "external_id"], name="billingdocument_unique"),
            models.CheckConstraint(condition=Q(amount__gte=0), name="billingdocument_amount_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.external_id}"
