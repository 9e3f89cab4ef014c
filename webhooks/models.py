"""Webhooks out: endpoints, the messages (events) sent to them, deliveries and their attempts.

A ``Message`` is one domain event as sent (its ``webhook-id`` and exact body). A
``Delivery`` is that message for one endpoint, numbered in the endpoint's sequence; the
sender delivers an endpoint's deliveries strictly in that order. Every HTTP request made
is an ``Attempt`` with what the receiver answered.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


class Endpoint(models.Model):
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    # Blank: the company (every subscribed event); a team: events about that team's accounts and people.
    team = models.ForeignKey("revops.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    event_types = ArrayField(models.CharField(max_length=40), default=list)
    # ``whsec_…`` secrets, Fernet-encrypted (webhooks.crypto). During a rotation the previous
    # one signs too, until ``previous_secret_expires_at``.
    secret = models.TextField()
    previous_secret = models.TextField(blank=True)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    # The sequence number the next delivery gets (taken under the row's lock, so sequence
    # order is commit order).
    next_sequence = models.BigIntegerField(default=1)
    # Deliveries that used up their retries in a row (a delivered one resets it).
    consecutive_failures = models.PositiveIntegerField(default=0)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def scope_label(self) -> str:
        return f"Team {self.team.name}" if self.team_id else "Company"


class Message(models.Model):
    # The Standard Webhooks ``webhook-id``: receivers dedupe on it, so a replay keeps it.
    webhook_id = models.CharField(max_length=40, unique=True)
    type = models.CharField(max_length=40)
    # The exact JSON body sent ({"type", "timestamp", "data"}), so every attempt signs the same bytes.
    body = models.TextField()
    team_ids = ArrayField(models.BigIntegerField(), default=list)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.type} {self.webhook_id}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class Delivery(models.Model):
    endpoint = models.ForeignKey(Endpoint, on_delete=models.CASCADE, related_name="deliveries")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="deliveries")
    sequence = models.BigIntegerField()
    state = models.CharField(max_length=16, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["endpoint", "sequence"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "sequence"], name="webhooks_delivery_sequence"),
            models.UniqueConstraint(fields=["endpoint", "message"], name="webhooks_delivery_once"),
        ]
        indexes = [
            # The sender's head-of-line query: the endpoint's first pending delivery.
            models.Index(
                fields=["endpoint", "sequence"],
                condition=models.Q(state="pending"),
                name="webhooks_delivery_pending",
            ),
            models.Index(fields=["endpoint", "-sequence"], name="webhooks_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"delivery {self.sequence} of {self.message} to {self.endpoint}"


class AttemptKind(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    REPLAY = "replay", "Replay"


class Attempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    kind = models.CharField(max_length=16, choices=AttemptKind.choices, default=AttemptKind.SCHEDULED)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_at = models.DateTimeField()
    # When the request went out; null: a replay still queued for the worker.
    sent_at = models.DateTimeField(null=True, blank=True)
    status = models.PositiveIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} of {self.delivery_id}"

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300
