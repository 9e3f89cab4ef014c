"""Read API over the forecast snapshots, with the same auth and scope rules as the metrics API.

GET /api/v1/forecasts/accounts/{external_id} returns the account's forecast as of a day
(default: its newest snapshot): daily points for the first 90 days, then 7-day sums
(``days`` says which), and the 90/180/365-day totals. Like every account figure it
includes the account's divisions (their snapshots summed, intervals combined as in the
roll-ups), the same numbers as the account page's panel and the forecast page's account
row; ``divisions=exclude`` gives the account's own usage only. ``divisions`` in the
answer says which. GET /api/v1/forecasts/accuracy scores the snapshots the caller may
see against the actuals that have arrived, beside the naive run-rate baseline.
Money is a decimal string with 2 places; ratios a decimal string fraction with 4.
"""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.security import django_auth

from accounts.access import accounts_visible_to
from forecasting import rollups
from forecasting.accuracy import snapshot_accuracy
from forecasting.models import AccountForecast, ForecastMethod
from forecasting.rollups import Divisions, ScopeKind
from revops.api_auth import ApiError, ReadKeyAuth
from revops.clock import today_utc
from usage.signals.api import ISO_DAY, _money, _ratio

router = Router(tags=["forecasts"], auth=[ReadKeyAuth(), django_auth])

ERRORS = {400: ApiError, 401: ApiError, 403: ApiError, 404: ApiError, 429: ApiError}
MONEY_NOTE = " Money, 2 decimal places, as a string."


class PointOut(Schema):
    date: dt.date = Field(..., description="The first day the point covers.")
    days: int = Field(..., description="1: one day; up to 7: the sum over that many days (beyond day 90).")
    value: str = Field(..., description="Forecast revenue." + MONEY_NOTE)
    lower: str = Field(..., description="10th percentile (80% interval)." + MONEY_NOTE)
    upper: str = Field(..., description="90th percentile (80% interval)." + MONEY_NOTE)


class TotalOut(Schema):
    horizon: int = Field(..., description="Days after as_of: 90, 180 or 365.")
    value: str = Field(..., description="Forecast revenue over the horizon." + MONEY_NOTE)
    lower: str = Field(..., description="10th percentile of the total (80% interval)." + MONEY_NOTE)
    upper: str = Field(..., description="90th percentile of the total (80% interval)." + MONEY_NOTE)


class AccountForecastOut(Schema):
    account: str = Field(..., description="The account's external id.")
    as_of: dt.date = Field(..., description="The last day of actuals the forecast saw.")
    divisions: str = Field(
        ..., description="include: the account with every division below it (the default); exclude: its own usage."
    )
    accounts: int = Field(..., description="Account snapshots summed: 1, or 1 + its divisions'.")
    method: str | None = Field(
        ..., description="The account's own method, one of: " + ", ".join(ForecastMethod.values) + "; null without one."
    )
    history_days: int | None = Field(..., description="Days of history of the account's own forecast.")
    totals: list[TotalOut]
    points: list[PointOut]


class ScoreOut(Schema):
    wape: str | None = Field(None, description="Σ|actual − forecast| ÷ Σ actual, a fraction with 4 places.")
    bias: str | None = Field(None, description="Σ(forecast − actual) ÷ Σ actual; positive = too high.")


class AccuracyOut(Schema):
    horizon: int
    model: ScoreOut
    naive: ScoreOut = Field(..., description="The trailing-30-day run rate carried forward.")
    snapshots: int = Field(..., description="(account, as-of) snapshots whose horizon has fully arrived.")


def _day(value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value) if ISO_DAY.fullmatch(value) else None
    except ValueError:
        return None


@router.get(
    "/forecasts/accounts/{external_id}",
    response={200: AccountForecastOut, **ERRORS},
    summary="An account's forecast snapshot (with its divisions)",
)
def account_forecast(
    request: HttpRequest,
    external_id: str,
    as_of: str | None = Query(None, description="YYYY-MM-DD. Default: the account's newest snapshot."),
    horizon: int = Query(365, ge=1, le=365, description="Days ahead to return (1–365)."),
    divisions: str = Query(
        Divisions.INCLUDE, description="include (default): the account with its divisions; exclude: its own usage."
    ),
):
    day = _day(as_of)
    if as_of and day is None:
        raise HttpError(400, f"as_of must be a date as YYYY-MM-DD, not {as_of[:40]!r}.")
    if divisions not in Divisions.ALL:
        raise HttpError(400, f"divisions must be include or exclude, not {divisions[:40]!r}.")
    include = divisions == Divisions.INCLUDE
    scope = rollups.scope_for(request.auth, ScopeKind.ACCOUNT, external_id, on=today_utc(), divisions=include)
    account = scope.root
    own = AccountForecast.objects.filter(account=account)
    own = (own.filter(as_of=day) if day else own.order_by("-as_of")).first()
    day = day or (own.as_of if own else rollups.latest_as_of(scope.accounts))
    totals = rollups.rolled_totals(scope.accounts, as_of=day) if day else None
    if totals is None or not totals.accounts:
        raise HttpError(404, f"No forecast for {external_id} as of {day or 'any day'}.")
    last = day + dt.timedelta(days=horizon)
    points = rollups.rolled_points(scope.accounts, as_of=day, until=last)
    return {
        "account": account.external_id,
        "as_of": day,
        "divisions": divisions,
        "accounts": totals.accounts,
        "method": own.method if own else None,
        "history_days": own.history_days if own else None,
        "totals": [
            {"horizon": h, "value": _money(t.value), "lower": _money(t.lower), "upper": _money(t.upper)}
            for h, t in totals.totals.items()
        ],
        "points": [
            {
                "date": p.day,
                "days": p.days,
                "value": _money(p.value),
                "lower": _money(p.lower),
                "upper": _money(p.upper),
            }
            for p in points
        ],
    }


@router.get("/forecasts/accuracy", response={200: AccuracyOut, **ERRORS}, summary="Forecast accuracy by horizon")
def forecast_accuracy(
    request: HttpRequest,
    horizon: int = Query(30, ge=1, le=90, description="Days ahead scored (1–90), e.g. 7, 30 or 90."),
):
    visible = list(accounts_visible_to(request.auth, on=today_utc()).values_list("pk", flat=True))
    result = snapshot_accuracy(horizon=horizon, account_ids=visible)
    return {
        "horizon": horizon,
        "model": {"wape": _ratio(result.model.wape), "bias": _ratio(result.model.bias)},
        "naive": {"wape": _ratio(result.naive.wape), "bias": _ratio(result.naive.bias)},
        "snapshots": result.snapshots,
    }
