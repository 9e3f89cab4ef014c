"""The leaders' monthly cross-functional review (docs/metrics.md, "Monthly review").

A review is opened for a month; opening freezes a snapshot of the shared numbers into
``Review.snapshot`` (values and the definitions they were computed with, never
recomputed). Sales adds 2–3 patterns citing accounts and logged activities, product 1–2
roadmap decisions with the usage data behind them, and anyone preparing the review adds
action items. Every cited thing is copied into the row's ``evidence`` when it is saved,
so a finalized review reads the same after accounts are renamed, activities deleted or
metric definitions changed. Finalizing locks the review and its rows: database triggers
refuse any change to a finalized review's rows.
"""

from __future__ import annotations

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models

from accounts.models import Account, Activity
from usage.models import Meter, ProductRelease

MIN_PATTERNS, MAX_PATTERNS = 2, 3
MIN_DECISIONS, MAX_DECISIONS = 1, 2

# A child row of a finalized review can be neither added, changed nor removed.
LOCKED_CHILD_SQL = """
    IF (TG_OP <> 'INSERT' AND EXISTS (SELECT 1 FROM reviews_review r WHERE r.id = OLD.review_id AND r.status = 'final'))
       OR (TG_OP <> 'DELETE' AND EXISTS (SELECT 1 FROM reviews_review r WHERE r.id = NEW.review_id AND r.status = 'final'))
    THEN
        RAISE EXCEPTION USING ERRCODE = 'integrity_constraint_violation',
            MESSAGE = format('the review is final: %s cannot change', TG_TABLE_NAME);
    END IF;
    IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
    RETURN NEW;
"""


def _locked_with_review(name: str) -> pgtrigger.Trigger:
    return pgtrigger.Trigger(
        name=name,
        operation=pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete,
        when=pgtrigger.Before,
        func=LOCKED_CHILD_SQL,
    )


class ReviewStatus(models.TextChoices):
    DRAFT = "draft", "Being prepared"
    FINAL = "final", "Final"


class Review(models.Model):
    month = models.DateField(unique=True, help_text="The first day of the month reviewed.")
    status = models.CharField(max_length=8, choices=ReviewStatus.choices, default=ReviewStatus.DRAFT)
    as_of = models.DateField(help_text="The day the snapshot's numbers are as of.")
    snapshot = models.JSONField(help_text="The shared numbers frozen when the review was opened.")
    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField(auto_now_add=True)
    finalized_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    finalized_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(blank=True, help_text="The leaders' summary, written when finalizing.")

    class Meta:
        ordering = ["-month"]
        triggers = [
            # A final review is never changed or deleted (drafts can be thrown away).
            pgtrigger.Protect(
                name="review_final_is_frozen",
                operation=pgtrigger.Update | pgtrigger.Delete,
                condition=pgtrigger.Q(old__status="final"),
            ),
        ]

    def __str__(self) -> str:
        return f"Review {self.month:%Y-%m}"

    @property
    def is_final(self) -> bool:
        return self.status == ReviewStatus.FINAL

    @property
    def label(self) -> str:
        return f"{self.month:%B %Y}"


class SalesPattern(models.Model):
    """A pattern sales heard in usage conversations this month, with the accounts and activities behind it."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="patterns")
    title = models.CharField(max_length=200)
    detail = models.TextField(help_text="What customers said and what it means.")
    accounts = models.ManyToManyField(Account, related_name="+", blank=True)
    activities = models.ManyToManyField(Activity, related_name="+", blank=True)
    evidence = models.JSONField(default=dict, help_text="The cited accounts and activities as they were.")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["review", "id"]
        triggers = [_locked_with_review("salespattern_locked_when_final")]

    def __str__(self) -> str:
        return self.title


class ProductDecision(models.Model):
    """A roadmap decision with the usage data behind it (meters, features, releases, attribution)."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="decisions")
    title = models.CharField(max_length=200)
    rationale = models.TextField(help_text="The decision and why the usage data supports it.")
    meters = models.ManyToManyField(Meter, related_name="+", blank=True)
    features = ArrayField(models.CharField(max_length=80), default=list, blank=True)
    releases = models.ManyToManyField(ProductRelease, related_name="+", blank=True)
    window_days = models.PositiveSmallIntegerField(default=28, help_text="Attribution window for the releases cited.")
    evidence = models.JSONField(default=dict, help_text="Usage series and attribution as they were when saved.")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["review", "id"]
        triggers = [_locked_with_review("productdecision_locked_when_final")]

    def __str__(self) -> str:
        return self.title


class ActionStatus(models.TextChoices):
    OPEN = "open", "Open"
    DONE = "done", "Done"
    DROPPED = "dropped", "Dropped"


class ActionItem(models.Model):
    """An action agreed in a review. Open items are copied into the next month's review when it
    is opened (``carried_from`` links the copies), so each review keeps its items as they were."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="actions")
    title = models.CharField(max_length=300)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="review_actions")
    owner_name = models.CharField(max_length=200, help_text="The owner's name as it was.")
    due_on = models.DateField()
    status = models.CharField(max_length=8, choices=ActionStatus.choices, default=ActionStatus.OPEN)
    note = models.CharField(max_length=300, blank=True)
    carried_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="carried_to")
    first_raised = models.DateField(help_text="The month of the review that first raised it.")

    class Meta:
        ordering = ["review", "due_on", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "carried_from"], name="actionitem_carried_once"),
        ]
        triggers = [_locked_with_review("actionitem_locked_when_final")]

    def __str__(self) -> str:
        return self.title
