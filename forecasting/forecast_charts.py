"""The forecast fan chart: actual revenue per day, then the forecast with its 80% band.

A pure function of rolled points and actuals; ``static/js/charts.js`` draws the dict.
Weekly points (beyond day 90) are drawn as revenue per day over their week, so the line
keeps one unit from end to end.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

from forecasting.planning_charts import BASE_LAYOUT
from forecasting.rollups import RolledPoint

ACTUAL = "#344054"
FORECAST = "#1d4ed8"
BAND = "rgba(29, 78, 216, 0.15)"


def _mid(point: RolledPoint) -> str:
    """A weekly point is plotted at the middle of its week."""
    return (point.day + dt.timedelta(days=(point.days - 1) / 2)).isoformat()


def fan_figure(
    points: Sequence[RolledPoint],
    actuals: Mapping[dt.date, Decimal],
    *,
    first_actual: dt.date,
    as_of: dt.date,
    title: str,
    height: int = 360,
) -> dict:
    actual_days = [first_actual + dt.timedelta(days=k) for k in range((as_of - first_actual).days + 1)]
    x = [_mid(p) for p in points]
    values, lowers, uppers = zip(*(p.per_day() for p in points), strict=True) if points else ((), (), ())
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Actual",
            "x": [d.isoformat() for d in actual_days],
            "y": [float(actuals.get(d, 0)) for d in actual_days],
            "line": {"color": ACTUAL, "width": 1.5},
        },
        # The band: the lower bound first (invisible), then the upper filled down to it.
        {
            "type": "scatter",
            "mode": "lines",
            "name": "80% interval (low)",
            "x": x,
            "y": list(lowers),
            "line": {"width": 0},
            "showlegend": False,
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "80% interval",
            "x": x,
            "y": list(uppers),
            "fill": "tonexty",
            "fillcolor": BAND,
            "line": {"width": 0},
        },
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Forecast",
            "x": x,
            "y": list(values),
            "line": {"color": FORECAST, "width": 2},
        },
    ]
    return {
        "data": data,
        "layout": {
            **BASE_LAYOUT,
            "height": height,
            "title": {"text": title, "font": {"size": 14}},
            "yaxis": {
                "tickprefix": "$",
                "tickformat": ",.3s",
                "rangemode": "tozero",
                "title": {"text": "Revenue per day"},
            },
            "xaxis": {"type": "date"},
            "shapes": [
                {
                    "type": "line",
                    "x0": as_of.isoformat(),
                    "x1": as_of.isoformat(),
                    "yref": "paper",
                    "y0": 0,
                    "y1": 1,
                    "line": {"color": "#98a2b3", "dash": "dot"},
                }
            ],
            "hovermode": "x unified",
        },
    }
