"""What a review freezes when it is opened: the shared numbers of the month, as values.

``freeze(month)`` reads the already computed shared metrics (``usage.PortfolioMetrics``
and ``AccountMetrics``, the same rows the metrics pages show), the realization
waterfall and stacked target (``forecasting.waterfall``) and the company forecast
(``forecasting.rollups``), and returns them as a JSON-safe dict: money and ratios as
decimal strings, with each metric's label and definition as they were. Nothing in a
review is recomputed later; pages render this dict.

The numbers are as of the month's last day, or the newest day with metrics if the month
is not over.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Max

from accounts.models import Account, OwnerRole, Ownership, Segment
from forecasting import cohorts as cohort_analysis
from forecasting import rollups
from forecasting import waterfall as realization
from forecasting.models import AccountForecast
from usage.models import AccountMetrics, PortfolioMetrics
from usage.signals.metrics import DEFINITIONS

GROWTH_TARGET = Decimal("0.20")
MOVERS = 5
PORTFOLIO_FIELDS = (
    "accounts",
    "run_rate",
    "committed_arr",
    "burn_rate",
    "nrr",
    "gur",
    "median_ttfbe_days",
    "expansion_velocity",
    "consumption_rate",
    "net_new_arr",
    "realization_committed",
    "realization_realized",
)


class SnapshotError(Exception):
    """The month cannot be snapshotted (no metrics computed for it yet)."""


def month_end(month: dt.date) -> dt.date:
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return following - dt.timedelta(days=1)


def _s(value) -> str | None:
    return None if value is None else str(value)


def snapshot_day(month: dt.date) -> dt.date | None:
    """The month's last day with company metrics (None before any refresh of that month)."""
    return PortfolioMetrics.objects.filter(segment="", as_of__gte=month, as_of__lte=month_end(month)).aggregate(
        day=Max("as_of")
    )["day"]


def _portfolio(as_of: dt.date | None) -> list[dict]:
    if as_of is None:
        return []
    labels = dict(Segment.choices)
    rows = []
    for row in PortfolioMetrics.objects.filter(as_of=as_of).order_by("segment"):
        values = {name: _s(getattr(row, name)) for name in PORTFOLIO_FIELDS}
        values["realization_gap"] = _s(row.realization_gap)
        rows.append({"segment": row.segment, "label": labels.get(row.segment, "Company"), **values})
    # Company last, as a total row.
    return sorted(rows, key=lambda r: (r["segment"] == "", r["segment"]))


def _definitions() -> dict[str, dict[str, str]]:
    out = {}
    for key in (*PORTFOLIO_FIELDS, "realization_gap"):
        label, text = DEFINITIONS[key]
        out[key] = {"label": label, "definition": text}
    return out


def _waterfall(month: dt.date, as_of: dt.date) -> dict:
    start = month - dt.timedelta(days=1)  # the run rate at the end of the month before
    rows = realization.period_rows(start=start, end=as_of)
    result = realization.waterfall(rows, start=start, end=as_of)
    ramps = cohort_analysis.segment_ramps(cohort_analysis.land_trajectories(as_of=as_of))
    stacked = realization.stacked_target(
        rows, end=as_of, ramp_days={s: r.ramp_days for s, r in ramps.items()}, growth_target=GROWTH_TARGET
    )
    total = stacked[-1] if stacked else None
    return {
        "waterfall": {
            "start": start.isoformat(),
            "end": as_of.isoformat(),
            "start_run_rate": _s(result.start_run_rate),
            "churn": _s(result.churn),
            "churned_accounts": result.churned_accounts,
            "new_logo_commitments": _s(result.new_logo_commitments),
            "expansion_commitments": _s(result.expansion_commitments),
            "committed": _s(result.committed),
            "run_rate_gap": _s(result.run_rate_gap),
            "actual": _s(result.actual),
        },
        "target": {
            "growth_target": _s(GROWTH_TARGET),
            "stacked": _s(total.stacked) if total else None,
            "mature_run_rate": _s(total.mature_run_rate) if total else None,
            "new_commitments": _s(total.new_commitments) if total else None,
            "last_year_run_rate": _s(total.last_year_run_rate) if total else None,
            "yoy_target": _s(total.yoy_target) if total else None,
        },
    }


def forecast_day(month: dt.date) -> dt.date | None:
    """The as-of day of the newest forecast snapshot made on or before the month's last day."""
    return AccountForecast.objects.filter(as_of__lte=month_end(month)).aggregate(day=Max("as_of"))["day"]


def forecast_for(month: dt.date) -> dict | None:
    """The company forecast of the newest snapshot made on or before the month's last day
    (None when no forecast had been made by then), as the review stores it. Forecast
    snapshots never change once made, so reading one later gives what it said then."""
    day = forecast_day(month)
    if day is None:
        return None
    totals = rollups.rolled_totals(Account.objects.all(), as_of=day)
    return {
        "as_of": day.isoformat(),
        "accounts": totals.accounts,
        "horizons": {
            str(h): {
                "value": _s(t.value),
                "lower": _s(t.lower),
                "upper": _s(t.upper),
                "run_rate": _s(totals.run_rate_total(h)),
            }
            for h, t in totals.totals.items()
        },
    }


def review_forecast(review) -> tuple[dict | None, bool]:
    """(the forecast a review shows, whether it was found after the review was opened).

    A review shows the forecast it froze. One opened before any forecast of its month
    existed (forecasts can be backfilled for past days) shows the newest snapshot made on
    or before the month's last day, and says it was found later."""
    frozen = (review.snapshot or {}).get("forecast")
    if frozen:
        return frozen, bool(review.snapshot.get("forecast_found_later"))
    found = forecast_for(review.month)
    return found, found is not None


def with_forecast(frozen: dict, month: dt.date) -> dict:
    """The snapshot with the month's forecast added when it froze none (on finalizing: a
    final review then keeps the forecast it was finalized with)."""
    if frozen.get("forecast"):
        return frozen
    found = forecast_for(month)
    return frozen if found is None else {**frozen, "forecast": found, "forecast_found_later": True}


def _movers(as_of: dt.date) -> dict[str, list[dict]]:
    """Top-level accounts with the largest net-new ARR up and down, with their owners on the day."""
    metrics = AccountMetrics.objects.filter(as_of=as_of, account__parent__isnull=True).select_related("account")
    up = list(metrics.filter(net_new_arr__gt=0).order_by("-net_new_arr")[:MOVERS])
    down = list(metrics.filter(net_new_arr__lt=0).order_by("net_new_arr")[:MOVERS])
    owners: dict[int, dict[str, str]] = {}
    ownerships = (
        Ownership.objects.filter(account__in=[m.account_id for m in up + down], start_on__lte=as_of)
        .exclude(end_on__lt=as_of)
        .select_related("person")
    )
    for o in ownerships:
        owners.setdefault(o.account_id, {})[o.role] = o.person.name
    roles = dict(OwnerRole.choices)

    def row(m: AccountMetrics) -> dict:
        return {
            "external_id": m.account.external_id,
            "name": m.account.name,
            "segment": m.account.get_segment_display(),
            "net_new_arr": _s(m.net_new_arr),
            "run_rate": _s(m.run_rate),
            "burn_rate": _s(m.burn_rate),
            "owners": [{"role": roles[r], "name": n} for r, n in sorted(owners.get(m.account_id, {}).items())],
        }

    return {"up": [row(m) for m in up], "down": [row(m) for m in down]}


def freeze(month: dt.date) -> tuple[dt.date, dict]:
    """(as_of, snapshot) for the month; ``SnapshotError`` when it has no metrics yet."""
    as_of = snapshot_day(month)
    if as_of is None:
        raise SnapshotError(
            f"No shared metrics have been computed for {month:%B %Y} yet; they are refreshed nightly "
            "(or with manage.py refresh_metrics)."
        )
    previous = snapshot_day((month - dt.timedelta(days=1)).replace(day=1))
    return as_of, {
        "version": 1,
        "as_of": as_of.isoformat(),
        "definitions": _definitions(),
        "metrics": _portfolio(as_of),
        "previous_as_of": _s(previous),
        "previous_metrics": _portfolio(previous),
        **_waterfall(month, as_of),
        "forecast": forecast_for(month),
        "movers": _movers(as_of),
    }
