"""The forecast and planning charts: pure figure dicts, checked without a browser."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from forecasting.forecast_charts import fan_figure, partial_tail
from forecasting.planning_charts import money_axis, waterfall_figure
from forecasting.rollups import RolledPoint
from forecasting.waterfall import Waterfall

AS_OF = dt.date(2026, 11, 30)
FIRST = AS_OF - dt.timedelta(days=9)
D = Decimal


def _point(day: dt.date, days: int, per_day: str) -> RolledPoint:
    value = D(per_day) * days
    return RolledPoint(day, days, value, value * D("0.8"), value * D("1.2"))


def _fan(points, actuals=None) -> dict:
    return fan_figure(points, actuals or {}, first_actual=FIRST, as_of=AS_OF, title="t")


def test_an_empty_forecast_has_a_dollar_axis_without_milli_dollars():
    # Plotly's ",.3s" writes the 0.8 tick of an empty 0–1 axis as "$800m".
    layout = _fan([])["layout"]

    assert layout["yaxis"]["tickformat"] == ",.2~f"
    assert (layout["yaxis"]["range"], layout["yaxis"]["autorange"]) == ([0, 1], False)
    assert layout["annotations"][0]["text"] == "No revenue in this scope yet"


def test_small_series_show_dollars_and_large_ones_si_units():
    assert money_axis([0.8, 0.2])["tickformat"] == ",.2~f"  # $0.8, not $800m
    assert money_axis([999.0])["tickformat"] == ",.2~f"
    assert money_axis([1500.0, -20.0])["tickformat"] == ",.3~s"  # $1.5k
    small = _fan([_point(AS_OF + dt.timedelta(days=1), 1, "0.80")], {FIRST: D("0.50")})["layout"]["yaxis"]
    assert small["tickformat"] == ",.2~f" and "range" not in small and small["rangemode"] == "tozero"
    big = waterfall_figure(
        Waterfall(
            start=FIRST,
            end=AS_OF,
            start_run_rate=D(36500),
            churn=D(7300),
            new_logo_commitments=D(21900),
            expansion_commitments=D(0),
            actual=D(40150),
            churned_accounts=1,
            accounts=3,
        )
    )
    assert big["layout"]["yaxis"]["tickformat"] == ",.3~s"


def test_the_last_partial_week_is_drawn_dotted_and_labelled_not_as_a_drop():
    # Days 1–2 daily at $100, a whole week at $100 a day, then a last bucket of 2 days
    # ($200 as a sum): drawn per day it is $100, dotted and marked "partial: 2 of 7 days".
    start = AS_OF + dt.timedelta(days=1)
    points = [
        _point(start, 1, "100"),
        _point(start + dt.timedelta(days=1), 1, "100"),
        _point(start + dt.timedelta(days=2), 7, "100"),
        _point(start + dt.timedelta(days=9), 2, "100"),
    ]
    assert partial_tail(points) == (2, 7)
    figure = _fan(points)
    traces = {t["name"]: t for t in figure["data"]}

    assert traces["Forecast"]["y"] == [100.0, 100.0, 100.0]  # the whole periods
    tail = traces["Forecast, last period (partial: 2 of 7 days)"]
    assert tail["y"] == [100.0, 100.0] and tail["line"]["dash"] == "dot"
    assert tail["x"] == [(start + dt.timedelta(days=5)).isoformat(), (start + dt.timedelta(days=9)).isoformat()]
    assert [a["text"] for a in figure["layout"]["annotations"]] == ["partial: 2 of 7 days"]


def test_a_forecast_of_whole_periods_has_no_partial_mark():
    start = AS_OF + dt.timedelta(days=1)
    points = [_point(start + dt.timedelta(days=k), 1, "5") for k in range(3)]

    assert partial_tail(points) is None
    names = [t["name"] for t in _fan(points)["data"]]
    assert names == ["Actual", "80% interval (low)", "80% interval", "Forecast"]
