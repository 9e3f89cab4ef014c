"""Plotly figure dicts for the analysis pages: pure functions of attribution results.

No queries here; ``static/js/charts.js`` draws the dicts. Decimals become floats only
here, for plotting; every number shown as text comes from the Decimal results.
"""

from __future__ import annotations

from forecasting.planning_charts import BASE_LAYOUT

ADOPTERS_COLOR = "#3454d1"
NON_ADOPTERS_COLOR = "#98a2b3"


def attribution_figure(evidence: dict) -> dict | None:
    """Mean daily revenue per account of adopters and non-adopters by day relative to the
    release, with the release day marked. Takes ``Attribution.as_dict()``, the form a product
    decision stores, so the analysis page and a past review draw the same chart; None
    without a series."""
    series = evidence.get("series") or []
    if not series:
        return None
    offsets = [p["offset"] for p in series]
    data = []
    for name, key, color in (
        ("Adopters", "adopters", ADOPTERS_COLOR),
        ("Non-adopters", "non_adopters", NON_ADOPTERS_COLOR),
    ):
        n = evidence[key]["n"]
        if not n:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{name} (n = {n})",
                "x": offsets,
                "y": [None if p[key] is None else float(p[key]) for p in series],
                "customdata": [p["day"] for p in series],
                "hovertemplate": "%{customdata}: $%{y:,.2f}<extra>" + name + "</extra>",
                "line": {"color": color},
            }
        )
    return {
        "data": data,
        "layout": {
            **BASE_LAYOUT,
            "title": {"text": "Mean daily revenue per account around the release", "font": {"size": 14}},
            "xaxis": {"title": {"text": "Days from the release"}, "zeroline": False},
            "yaxis": {"tickprefix": "$", "tickformat": ",.0f", "rangemode": "tozero"},
            "shapes": [
                {
                    "type": "line",
                    "x0": 0,
                    "x1": 0,
                    "xref": "x",
                    "y0": 0,
                    "y1": 1,
                    "yref": "paper",
                    "line": {"color": "#b42318", "dash": "dot", "width": 1},
                }
            ],
            "annotations": [
                {
                    "x": 0,
                    "y": 1,
                    "xref": "x",
                    "yref": "paper",
                    "text": "release",
                    "showarrow": False,
                    "yanchor": "bottom",
                }
            ],
        },
    }
