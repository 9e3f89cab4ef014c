"""How far the demo company's seed has got: `make run` serves pages as soon as the company
and its metrics are in, and the worker completes the rest (comp, forecasts, reviews)."""

from __future__ import annotations

from django.db import models


class DemoStage(models.Model):
    """One stage of the demo seed, with the parameters every stage shares."""

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=32, primary_key=True)
    position = models.PositiveSmallIntegerField()
    # The seed's parameters, the same on every stage.
    as_of = models.DateField(help_text="The anchor day: usage ends the day before.")
    seed = models.IntegerField()
    accounts = models.PositiveIntegerField()
    months = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    summary = models.TextField(blank=True, help_text="What the stage loaded, in words.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return f"{self.name}: {self.status}"

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
