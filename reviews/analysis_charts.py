"""Plotly figure dicts for the analysis pages and the reviews: pure functions of selector
output and stored evidence.

No queries here; ``static/js/charts.js`` draws the dicts. Decimals become floats only
here, for plotting; every number shown as text comes from the Decimal results.

A period that the data do not cover to its end (the running month) is drawn lighter and
hatched, with a note "partial: 3 of 31 days", so a short month does not read as a collapse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from forecasting.planning_charts import BASE_LAYOUT
from reviews.labels import partial_label

ADOPTERS_COLOR = "#3454d1"
NON_ADOPTERS_COLOR = "#98a2b3"
PALETTE = ("#1d4ed8", "#059669", "#d97706", "#7c3aed", "#dc2626", "#0891b2", "#4b5563", "#be185d")
PARTIAL_OPACITY = 0.4


def _release_marker() -> tuple[list[dict], list[dict]]:
    shapes = [
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
    ]
    annotations = [
        {"x": 0, "y": 1, "xref": "x", "yref": "paper", "text": "release", "showarrow": False, "yanchor": "bottom"}
    ]
    return shapes, annotations


def attribution_figure(evidence: dict) -> dict | None:
    """Revenue around the release as a share of the level before, matched adopters against
    their matched comparison (evidence version 2), or, for evidence stored by the earlier
    method, mean daily revenue per account of adopters and non-adopters. Takes
    ``Attribution.as_dict()``, the form a product decision stores, so the analysis page and
    a past review draw the same chart; None without a series."""
    series = evidence.get("series") or []
    if not series:
        return None
    if evidence.get("version", 1) < 2:
        return _legacy_attribution_figure(evidence, series)
    offsets = [p["offset"] for p in series]
    adopters = evidence["adopters"]
    comparison = evidence["comparison"]
    data = []
    for name, key, n, color in (
        ("Matched adopters", "adopters", adopters.get("matched") or adopters["n"], ADOPTERS_COLOR),
        ("Matched comparison", "comparison", comparison["n"], NON_ADOPTERS_COLOR),
    ):
        values = [None if p[key] is None else float(p[key]) for p in series]
        if not n or all(v is None for v in values):
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{name} (n = {n})",
                "x": offsets,
                "y": values,
                "customdata": [p["day"] for p in series],
                "hovertemplate": "%{customdata}: %{y:.0%} of the level before<extra>" + name + "</extra>",
                "line": {"color": color},
            }
        )
    shapes, annotations = _release_marker()
    shapes.append(
        {
            "type": "line",
            "x0": offsets[0],
            "x1": offsets[-1],
            "xref": "x",
            "y0": 1,
            "y1": 1,
            "yref": "y",
            "line": {"color": "#d0d5dd", "width": 1},
        }
    )
    return {
        "data": data,
        "layout": {
            **BASE_LAYOUT,
            "title": {"text": "Daily revenue as a share of the level before the release", "font": {"size": 14}},
            "xaxis": {"title": {"text": "Days from the release"}, "zeroline": False},
            "yaxis": {"tickformat": ".0%", "rangemode": "tozero"},
            "shapes": shapes,
            "annotations": annotations,
        },
    }


def _legacy_attribution_figure(evidence: dict, series: list[dict]) -> dict:
    offsets = [p["offset"] for p in series]
    data = []
    for name, key, color in (
        ("Adopters", "adopters", ADOPTERS_COLOR),
        ("Non-adopters", "non_adopters", NON_ADOPTERS_COLOR),
    ):
        n = evidence.get(key, {}).get("n")
        if not n:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{name} (n = {n})",
                "x": offsets,
                "y": [None if p.get(key) is None else float(p[key]) for p in series],
                "customdata": [p["day"] for p in series],
                "hovertemplate": "%{customdata}: $%{y:,.2f}<extra>" + name + "</extra>",
                "line": {"color": color},
            }
        )
    shapes, annotations = _release_marker()
    return {
        "data": data,
        "layout": {
            **BASE_LAYOUT,
            "title": {"text": "Mean daily revenue per account around the release", "font": {"size": 14}},
            "xaxis": {"title": {"text": "Days from the release"}, "zeroline": False},
            "yaxis": {"tickprefix": "$", "tickformat": ",.0f", "rangemode": "tozero"},
            "shapes": shapes,
            "annotations": annotations,
        },
    }


# --- Monthly series with a partial last month -----------------------------------------------


def monthly_bars(
    series: Sequence[dict], *, months: Sequence[dt.date], through: dt.date | None, title: str, **layout
) -> dict:
    """Grouped monthly bars, one trace per ``{"label", "revenue", "accounts"}`` series; the
    month the data stop in is lighter and hatched, with the days it covers written above it."""
    partial = [partial_label(m, through) for m in months]
    x = [m.isoformat() for m in months]
    data = [
        {
            "type": "bar",
            "name": s["label"],
            "x": x,
            "y": [float(v or 0) for v in s["revenue"]],
            "marker": {
                "color": PALETTE[i % len(PALETTE)],
                "opacity": [PARTIAL_OPACITY if p else 1 for p in partial],
                "pattern": {"shape": ["/" if p else "" for p in partial]},
            },
            "customdata": [
                [s["accounts"][k] if s.get("accounts") else "", f" ({p})" if p else ""] for k, p in enumerate(partial)
            ],
            "hovertemplate": "%{x|%Y-%m}%{customdata[1]}: $%{y:,.0f} from %{customdata[0]} accounts<extra>"
            + s["label"]
            + "</extra>",
        }
        for i, s in enumerate(series)
    ]
    annotations = [
        {
            "x": x[k],
            "y": 1,
            "xref": "x",
            "yref": "paper",
            "text": p,
            "showarrow": False,
            "yanchor": "bottom",
            "font": {"size": 11, "color": "#667085"},
        }
        for k, p in enumerate(partial)
        if p
    ]
    return {
        "data": data,
        "layout": {
            **BASE_LAYOUT,
            "barmode": "group",
            "title": {"text": title, "font": {"size": 14}},
            "yaxis": {"tickprefix": "$", "tickformat": ",.3s"},
            "xaxis": {"type": "date", "tickformat": "%Y-%m", "dtick": "M1"},
            "annotations": annotations,
            **layout,
        },
    }


def monthly_lines(
    series: Sequence[dict], *, months: Sequence[dt.date], through: dt.date | None, title: str, key: str, **layout
) -> dict:
    """One line per series over ``key`` (e.g. accounts using it) by month; the step into a
    partial last month is dotted and its point hollow, with the days it covers noted."""
    x = [m.isoformat() for m in months]
    partial = partial_label(months[-1], through) if months else ""
    data = []
    for i, s in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        values = [float(v or 0) for v in s[key]]
        full = len(values) - 1 if partial else len(values)
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": s["label"],
                "legendgroup": s["label"],
                "x": x[:full],
                "y": values[:full],
                "line": {"color": color},
                "hovertemplate": "%{x|%Y-%m}: %{y:,.0f}<extra>" + s["label"] + "</extra>",
            }
        )
        if partial and len(values) >= 2:
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{s['label']} ({partial})",
                    "legendgroup": s["label"],
                    "showlegend": False,
                    "x": x[-2:],
                    "y": values[-2:],
                    "line": {"color": color, "dash": "dot"},
                    "marker": {"symbol": ["circle", "circle-open"]},
                    "hovertemplate": "%{x|%Y-%m}: %{y:,.0f}<extra>" + f"{s['label']} ({partial})" + "</extra>",
                }
            )
    annotations = []
    if partial:
        annotations.append(
            {
                "x": x[-1],
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "text": partial,
                "showarrow": False,
                "yanchor": "bottom",
                "font": {"size": 11, "color": "#667085"},
            }
        )
    return {
        "data": data,
        "layout": {
            **BASE_LAYOUT,
            "title": {"text": title, "font": {"size": 14}},
            "yaxis": {"rangemode": "tozero"},
            "xaxis": {"type": "date", "tickformat": "%Y-%m", "dtick": "M1"},
            "annotations": annotations,
            **layout,
        },
    }


def product_figures(usage) -> list[tuple[str, dict]]:
    """(element id, figure) for the product page, from ``reviews.product.ProductUsage``."""
    months = [m.start for m in usage.months]

    def bars(lines, title: str) -> dict:
        return monthly_bars(
            [line.as_series() for line in lines], months=months, through=usage.as_of, title=title, barmode="stack"
        )

    def lines(rows, title: str) -> dict:
        return monthly_lines(
            [{"label": row.label, "accounts": list(row.accounts)} for row in rows],
            months=months,
            through=usage.as_of,
            title=title,
            key="accounts",
        )

    return [
        ("product-meter-revenue", bars(usage.meters, "Revenue by meter, per month ($)")),
        ("product-meter-accounts", lines(usage.meters, "Accounts using each meter, per month")),
        ("product-feature-revenue", bars(usage.features, "Revenue by feature, per month ($)")),
        ("product-feature-accounts", lines(usage.features, "Accounts using each feature, per month")),
    ]
