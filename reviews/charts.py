"""Plotly figure dicts for a review, drawn only from what the review froze (its snapshot and
each decision's evidence), so a past review's charts never change."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from forecasting.planning_charts import BASE_LAYOUT, waterfall_figure
from forecasting.waterfall import Waterfall
from reviews.analysis_charts import attribution_figure, monthly_bars
from reviews.models import Review


def usage_figure(series: list[dict], *, as_of: dt.date | None = None) -> dict:
    """A decision's monthly revenue evidence; the month ``as_of`` falls in is marked partial
    when the evidence stops before its end."""
    months = [dt.date.fromisoformat(m[:10]) for m in series[0]["months"]] if series else []
    return monthly_bars(series, months=months, through=as_of, title="Monthly revenue of the usage cited", height=280)


def decision_figures(decision) -> list[tuple[str, dict]]:
    """(element id, figure) for a decision's frozen usage evidence and release attributions."""
    evidence = decision.evidence or {}
    figures = []
    if evidence.get("usage"):
        as_of = dt.date.fromisoformat(evidence["as_of"]) if evidence.get("as_of") else None
        figures.append((f"decision-{decision.pk}-usage", usage_figure(evidence["usage"], as_of=as_of)))
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
