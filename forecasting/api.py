"""Read API over the forecast snapshots, with the same auth and scope rules as the metrics API.

GET /api/v1/forecasts/accounts/{external_id} returns the account's stored forecast as of a
day (default: its newest snapshot): daily points for the first 90 days, then 7-day sums
(``days`` says which). GET /api/v1/forecasts/accuracy scores the snapshots the caller
may see against the actuals that have arrived, beside the naive run-rate baseline.
Money is a decimal string with 2 places; ratios a decimal string fraction with 4.
"""

from __future__ import annotations

import datetime as dt

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from ninja.errors import HttpError
from ninja.security import django_auth

from accounts.access import account_for, accounts_visible_to
from forecasting.accuracy import snapshot_accuracy
from forecasting.models import AccountForecast, ForecastMethod
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


class AccountForecastOut(Schema):
    account: str = Field(..., description="The account's external id.")
    as_of: dt.date = Field(..., description="The last day of actuals the forecast saw.")
    method: str = Field(..., description="One of: " + ", ".join(ForecastMethod.values))
    history_days: int
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
    summary="An account's forecast snapshot",
)
def account_forecast(
    request: HttpRequest,
    external_id: str,
    as_of: str | None = Query(None, description="YYYY-MM-DD. Default: the account's newest snapshot."),
    horizon: int = Query(365, ge=1, le=365, description="Days ahead to return (1–365)."),
):
    day = _day(as_of)
    if as_of and day is None:
        raise HttpError(400, f"as_of must be a date as YYYY-MM-DD, not {as_of[:40]!r}.")
    account = account_for(request.auth, external_id, on=today_utc())
    forecasts = AccountForecast.objects.filter(account=account)
    forecast = (forecasts.filter(as_of=day) if day else forecasts.order_by("-as_of")).first()
    if forecast is None:
        raise HttpError(404, f"No forecast for {external_id} as of {day or 'any day'}.")
    last = forecast.as_of + dt.timedelta(days=horizon)
    points = forecast.points.filter(day__lte=last).order_by("day")
    return {
        "account": account.external_id,
        "as_of": forecast.as_of,
        "method": forecast.method,
        "history_days": forecast.history_days,
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
