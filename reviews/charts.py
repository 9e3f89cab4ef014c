"""Plotly figure dicts for a review, drawn only from what the review froze (its snapshot and
each decision's evidence), so a past review's charts never change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from forecasting.planning_charts import BASE_LAYOUT, waterfall_figure
from forecasting.waterfall import Waterfall
from reviews.analysis_charts import attribution_figure
from reviews.models import Review

PALETTE = ("#1d4ed8", "#059669", "#d97706", "#7c3aed", "#dc2626", "#0891b2")


def _f(value) -> float:
    return float(value or 0)


def usage_figure(series: list[dict]) -> dict:
    data = [
        {
            "type": "bar",
            "name": s["label"],
            "x": s["months"],
            "y": [_f(v) for v in s["revenue"]],
            "marker": {"color": PALETTE[i % len(PALETTE)]},
            "customdata": s["accounts"],
            "hovertemplate": "%{x|%Y-%m}: $%{y:,.0f} from %{customdata} accounts<extra>" + s["label"] + "</extra>",
        }
        for i, s in enumerate(series)
    ]
    return {
        "data": data,
        "layout": {
            **BASE_LAYOUT,
            "height": 280,
            "barmode": "group",
            "title": {"text": "Monthly revenue of the usage cited", "font": {"size": 14}},
            "yaxis": {"tickprefix": "$", "tickformat": ",.3s"},
            "xaxis": {"type": "date", "tickformat": "%Y-%m", "dtick": "M1"},
        },
    }


def decision_figures(decision) -> list[tuple[str, dict]]:
    """(element id, figure) for a decision's frozen usage evidence and release attributions."""
    evidence = decision.evidence or {}
    figures = []
    if evidence.get("usage"):
        figures.append((f"decision-{decision.pk}-usage", usage_figure(evidence["usage"])))
    for i, attribution in enumerate(evidence.get("releases", [])):
        figure = attribution_figure(attribution)
        if figure:
            figures.append((f"decision-{decision.pk}-release-{i}", figure))
    return figures


def review_waterfall(review: Review) -> dict | None:
    """The planning page's waterfall, drawn from the values the review froze."""
    w = (review.snapshot or {}).get("waterfall")
    if not w:
        return None
    result = Waterfall(
        start=dt.date.fromisoformat(w["start"]),
        end=dt.date.fromisoformat(w["end"]),
        start_run_rate=Decimal(w["start_run_rate"]),
        churn=Decimal(w["churn"]),
        new_logo_commitments=Decimal(w["new_logo_commitments"]),
        expansion_commitments=Decimal(w["expansion_commitments"]),
        actual=Decimal(w["actual"]),
        churned_accounts=w["churned_accounts"],
        accounts=0,  # not frozen; the chart does not show it
    )
    return waterfall_figure(result, height=320, margin={**BASE_LAYOUT["margin"], "b": 90})
