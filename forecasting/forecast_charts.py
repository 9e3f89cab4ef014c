"""The forecast fan chart: actual revenue per day, then the forecast with its 80% band.

A pure function of rolled points and actuals; ``static/js/charts.js`` draws the dict.
Weekly points (beyond day 90) are drawn as revenue per day over their week, so the line
keeps one unit from end to end. The year rarely ends on a whole week: its last bucket
(usually 2 days) is drawn dotted and labelled "partial: 2 of 7 days", so a short period
is never read as a drop.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import Decimal

from forecasting.planning_charts import BASE_LAYOUT, money_axis
from forecasting.rollups import RolledPoint

ACTUAL = "#344054"
FORECAST = "#1d4ed8"
BAND = "rgba(29, 78, 216, 0.15)"


def _mid(point: RolledPoint) -> str:
    """A weekly point is plotted at the middle of its week."""
    return (point.day + dt.timedelta(days=(point.days - 1) / 2)).isoformat()


def partial_tail(points: Sequence[RolledPoint]) -> tuple[int, int] | None:
    """(days covered, days of a whole period) when the last point covers fewer days than the
    one before it (a year that ends mid-week); None when it is whole."""
    if len(points) < 2 or points[-1].days >= points[-2].days:
        return None
    return points[-1].days, points[-2].days


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
    actual_y = [float(actuals.get(d, 0)) for d in actual_days]
    partial = partial_tail(points)
    whole = len(points) - 1 if partial else len(points)  # the forecast line up to the last whole period
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": "Actual",
            "x": [d.isoformat() for d in actual_days],
            "y": actual_y,
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
            "x": x[:whole],
            "y": list(values[:whole]),
            "line": {"color": FORECAST, "width": 2},
        },
    ]
    annotations = []
    if partial:
        note = f"partial: {partial[0]} of {partial[1]} days"
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"Forecast, last period ({note})",
                "x": x[-2:],
                "y": list(values[-2:]),
                "line": {"color": FORECAST, "width": 2, "dash": "dot"},
                "marker": {"size": [0, 6], "color": FORECAST},
                "opacity": 0.6,
                "hovertemplate": "%{y:$,.2f} a day (" + note + ")<extra></extra>",
            }
        )
        annotations.append(
            {"x": x[-1], "y": values[-1], "text": note, "showarrow": True, "arrowhead": 0, "ax": -40, "ay": -30}
        )
    if not any(actual_y) and not any(values):
        annotations.append(
            {
                "text": "No revenue in this scope yet",
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
            }
        )
    return {
        "data": data,
        "layout": {
            **BASE_LAYOUT,
            "height": height,
            "title": {"text": title, "font": {"size": 14}},
            "yaxis": money_axis([*actual_y, *uppers], rangemode="tozero", title={"text": "Revenue per day"}),
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
            "annotations": annotations,
            "hovermode": "x unified",
        },
    }
