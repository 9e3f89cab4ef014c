"""Dated revenue forecasts per account, kept as immutable snapshots (docs/metrics.md, "Forecasting").

A nightly run forecasts every account's own daily usage revenue (hierarchy not rolled:
a parent's forecast is the sum of its subtree's) as of a day. What was forecast on day
D stays exactly as it was: points can be neither updated nor deleted (database
triggers), and re-running the same day skips accounts that already have a snapshot.

Storage: the first ``DAILY_DAYS`` (90) days are stored one point a day (these are what
accuracy is scored on: 7, 30 and 90 days); the rest of the year as 7-day sums (``days``
= 7), so a 365-day forecast is 90 + 40 rows instead of 365 — 650,000 rows a night for
5,000 accounts instead of 1.8 million.
"""

from __future__ import annotations

from decimal import Decimal

import pgtrigger
from django.db import models

from accounts.models import Account

MONEY = {"max_digits": 16, "decimal_places": 2}


class ForecastRun(models.Model):
    """One run (or one shard of a run) of the forecast job, for the operations page and timing."""

    as_of = models.DateField()
    shard = models.PositiveSmallIntegerField(default=0)
    shards = models.PositiveSmallIntegerField(default=1)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    accounts = models.PositiveIntegerField(default=0, help_text="Accounts forecast by this run (skips excluded).")
    skipped = models.PositiveIntegerField(default=0, help_text="Accounts that already had a snapshot that day.")
    seconds = models.FloatField(default=0)

    class Meta:
        ordering = ["-as_of", "shard"]
        indexes = [models.Index(fields=["as_of"])]

    def __str__(self) -> str:
        return f"forecast run {self.as_of} shard {self.shard}/{self.shards}"


class ForecastMethod(models.TextChoices):
    ETS = "ets", "Exponential smoothing (damped trend, weekly seasonality)"
    RUN_RATE = "run_rate", "Trailing 30-day run rate (under 8 weeks of history)"
    COHORT = "cohort", "Cohort trajectory"
    NONE = "none", "No usage in the last year"


class AccountForecast(models.Model):
    """An account's forecast as of a day: the method, its fitted components and its points."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="forecasts")
    as_of = models.DateField(help_text="The last day of actuals the forecast saw; points start the day after.")
    method = models.CharField(max_length=16, choices=ForecastMethod.choices)
    history_days = models.PositiveIntegerField(help_text="Days of history used (from first usage, at most 365).")
    components = models.JSONField(default=dict, help_text="Fitted parameters and the naive baseline rate.")
    # Written with the snapshot, so pages sort and sum accounts without reading their points.
    # Each interval is the 80% interval of the horizon's total (not a sum of daily bounds).
    # Null on snapshots stored before these fields existed.
    naive_daily = models.DecimalField(
        **MONEY, null=True, blank=True, help_text="Trailing-30-day run rate per day (the naive baseline)."
    )
    next_90 = models.DecimalField(**MONEY, null=True, blank=True)
    next_90_lower = models.DecimalField(**MONEY, null=True, blank=True)
    next_90_upper = models.DecimalField(**MONEY, null=True, blank=True)
    next_180 = models.DecimalField(**MONEY, null=True, blank=True)
    next_180_lower = models.DecimalField(**MONEY, null=True, blank=True)
    next_180_upper = models.DecimalField(**MONEY, null=True, blank=True)
    next_365 = models.DecimalField(**MONEY, null=True, blank=True)
    next_365_lower = models.DecimalField(**MONEY, null=True, blank=True)
    next_365_upper = models.DecimalField(**MONEY, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["account", "-as_of"]
        constraints = [models.UniqueConstraint(fields=["account", "as_of"], name="accountforecast_one_per_day")]
        indexes = [models.Index(fields=["as_of"])]
        triggers = [
            pgtrigger.Protect(name="accountforecast_immutable", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} as of {self.as_of} ({self.method})"

    @property
    def change_vs_run_rate(self) -> Decimal | None:
        """The next 365 days against today's run rate carried forward (0.10 = 10% more)."""
        if not self.naive_daily or self.next_365 is None:
            return None
        return self.next_365 / (self.naive_daily * 365) - 1


class ForecastPoint(models.Model):
    """Forecast revenue for ``days`` days starting ``day`` (1: a day; 7: a week's sum), with an 80% interval."""

    forecast = models.ForeignKey(AccountForecast, on_delete=models.PROTECT, related_name="points")
    day = models.DateField()
    days = models.PositiveSmallIntegerField(default=1)
    value = models.DecimalField(**MONEY)
    lower = models.DecimalField(**MONEY)
    upper = models.DecimalField(**MONEY)

    class Meta:
        ordering = ["forecast", "day"]
        constraints = [models.UniqueConstraint(fields=["forecast", "day"], name="forecastpoint_one_per_day")]
        triggers = [
            pgtrigger.Protect(name="forecastpoint_immutable", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.forecast_id} {self.day}+{self.days}: {self.value}"
