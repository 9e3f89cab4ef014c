"""Plotly figures as plain dicts, built from selector output. No queries, no clock:
tests compare the figures exactly. ``static/js/charts.js`` draws them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from usage.signals.metrics import DAYS_PER_YEAR

ZERO = Decimal(0)
# One colour per meter, in meter order; readable on white and distinct when stacked.
PALETTE = ("#3454d1", "#12b76a", "#f79009", "#7a5af8", "#06aed4", "#ee46bc", "#667085")
COMMIT_COLOUR = "#1d2330"
ANOMALY_COLOUR = "#b42318"
RELEASE_COLOUR = "#98a2b3"


@dataclass(frozen=True)
class Release:
    released_on: dt.date
    name: str


@dataclass(frozen=True)
class Term:
    """A contract's committed ARR over its term (inclusive)."""

    start_on: dt.date
    end_on: dt.date
    committed_arr: Decimal


def day_range(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]


def revenue_by_meter(rows: Iterable[tuple[dt.date, str, Decimal]], days: Sequence[dt.date]) -> dict[str, list[Decimal]]:
    """(day, meter name, revenue) rows → each meter's daily revenue over ``days`` (0 where absent),
    meters in the order first met (the caller sorts the rows)."""
    index = {day: n for n, day in enumerate(days)}
    series: dict[str, list[Decimal]] = {}
    for day, meter, revenue in rows:
        if day not in index:
            continue
        values = series.setdefault(meter, [ZERO] * len(days))
        values[index[day]] += revenue
    return series


def commit_pace(terms: Iterable[Term], days: Sequence[dt.date]) -> list[Decimal]:
    """Committed ARR in force each day ÷ 365: the daily revenue that keeps pace with the commit."""
    terms = list(terms)
    return [
        sum((t.committed_arr for t in terms if t.start_on <= day <= t.end_on), ZERO) / DAYS_PER_YEAR for day in days
    ]


def _money(value: Decimal) -> float:
    # Plotly needs numbers; cents are plenty for a chart (tables keep Decimal).
    return float(round(value, 2))


def usage_figure(
    *,
    days: Sequence[dt.date],
    by_meter: dict[str, list[Decimal]],
    pace: Sequence[Decimal],
    releases: Sequence[Release] = (),
    anomaly_days: Iterable[dt.date] = (),
) -> dict:
    """Daily revenue by meter (stacked areas), the commit pace (a step line), product
    releases (dotted vertical lines, labelled) and sudden-decline days (red markers on
    the total)."""
    x = [d.isoformat() for d in days]
    data: list[dict] = []
    for n, (meter, values) in enumerate(by_meter.items()):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": meter,
                "x": x,
                "y": [_money(v) for v in values],
                "stackgroup": "revenue",
                "line": {"width": 0.5, "color": PALETTE[n % len(PALETTE)]},
                "hovertemplate": "%{y:$,.2f}<extra>" + meter + "</extra>",
            }
        )
    if any(pace):
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Commit pace (committed ARR ÷ 365)",
                "x": x,
                "y": [_money(v) for v in pace],
                "line": {"shape": "hv", "dash": "dash", "width": 2, "color": COMMIT_COLOUR},
                "hovertemplate": "%{y:$,.2f} a day<extra>commit pace</extra>",
            }
        )
    index = {day: n for n, day in enumerate(days)}
    flagged = sorted({d for d in anomaly_days if d in index})
    if flagged:
        totals = [sum((values[index[d]] for values in by_meter.values()), ZERO) for d in flagged]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "Sudden decline",
                "x": [d.isoformat() for d in flagged],
                "y": [_money(v) for v in totals],
                "marker": {"color": ANOMALY_COLOUR, "size": 9, "symbol": "x"},
                "hovertemplate": "%{y:$,.2f}: well below the expected level<extra>sudden decline</extra>",
            }
        )
    shown = [r for r in releases if days and days[0] <= r.released_on <= days[-1]]
    layout = {
        "margin": {"l": 60, "r": 20, "t": 30, "b": 40},
        "height": 360,
        "hovermode": "x unified",
        "legend": {"orientation": "h", "y": -0.15},
        "yaxis": {"title": {"text": "Revenue per day"}, "tickprefix": "$", "tickformat": ",.0f", "rangemode": "tozero"},
        "xaxis": {"type": "date"},
        "shapes": [
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": r.released_on.isoformat(),
                "x1": r.released_on.isoformat(),
                "y0": 0,
                "y1": 1,
                "line": {"color": RELEASE_COLOUR, "width": 1, "dash": "dot"},
            }
            for r in shown
        ],
        "annotations": [
            {
                "x": r.released_on.isoformat(),
                "xref": "x",
                "y": 1,
                "yref": "paper",
                "yanchor": "bottom",
                "text": r.name,
                "showarrow": False,
                "font": {"size": 11, "color": "#475467"},
            }
            for r in shown
        ],
    }
    return {"data": data, "layout": layout}
