"""Plotly figure dicts for a review, drawn only from what the review froze (its snapshot and
each decision's evidence), so a past review's charts never change."""

from __future__ import annotations

from forecasting.planning_charts import BASE_LAYOUT
from reviews.models import Review

PALETTE = ("#1d4ed8", "#059669", "#d97706", "#7c3aed", "#dc2626", "#0891b2")


def _f(value) -> float:
    return float(value or 0)


def waterfall_figure(w: dict) -> dict:
    steps = [
        ("Start run rate", "absolute", _f(w["start_run_rate"])),
        ("Churn", "relative", -_f(w["churn"])),
        ("New commitments", "relative", _f(w["new_logo_commitments"]) + _f(w["expansion_commitments"])),
        ("Committed", "total", _f(w["committed"])),
        ("Realization gap", "relative", -_f(w["realization_gap"])),
        ("Actual run rate", "total", _f(w["actual"])),
    ]
    return {
        "data": [
            {
                "type": "waterfall",
                "x": [s[0] for s in steps],
                "measure": [s[1] for s in steps],
                "y": [s[2] for s in steps],
                "connector": {"line": {"color": "#98a2b3"}},
                "increasing": {"marker": {"color": "#059669"}},
                "decreasing": {"marker": {"color": "#dc2626"}},
                "totals": {"marker": {"color": "#1d4ed8"}},
            }
        ],
        "layout": {
            **BASE_LAYOUT,
            "height": 320,
            "margin": {**BASE_LAYOUT["margin"], "b": 90},
            "title": {"text": f"Realization waterfall {w['start']} → {w['end']}", "font": {"size": 14}},
            "yaxis": {"tickprefix": "$", "tickformat": ",.3s"},
            "showlegend": False,
        },
    }


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


def release_figure(attribution: dict) -> dict | None:
    """Adopters vs non-adopters around the release: mean revenue per account per day."""
    series = attribution.get("series") or []
    if not series:
        return None
    offsets = [p["offset"] for p in series]
    data = [
        {
            "type": "scatter",
            "mode": "lines",
            "name": label,
            "x": offsets,
            "y": [None if p[key] is None else float(p[key]) for p in series],
            "line": {"color": color},
        }
        for key, label, color in (("adopters", "Adopters", "#1d4ed8"), ("non_adopters", "Non-adopters", "#98a2b3"))
    ]
    name = (attribution.get("release") or {}).get("name", "Release")
    return {
        "data": data,
        "layout": {
            **BASE_LAYOUT,
            "height": 280,
            "title": {"text": f"{name}: mean revenue per account per day, by days from release", "font": {"size": 13}},
            "xaxis": {"ticksuffix": " d", "zeroline": False},
            "yaxis": {"tickprefix": "$", "rangemode": "tozero"},
            "shapes": [
                {
                    "type": "line",
                    "x0": 0,
                    "x1": 0,
                    "yref": "paper",
                    "y0": 0,
                    "y1": 1,
                    "line": {"dash": "dot", "color": "#98a2b3"},
                }
            ],
        },
    }


def decision_figures(decision) -> list[tuple[str, dict]]:
    """(element id, figure) for a decision's frozen usage evidence and release attributions."""
    evidence = decision.evidence or {}
    figures = []
    if evidence.get("usage"):
        figures.append((f"decision-{decision.pk}-usage", usage_figure(evidence["usage"])))
    for i, attribution in enumerate(evidence.get("releases", [])):
        figure = release_figure(attribution)
        if figure:
            figures.append((f"decision-{decision.pk}-release-{i}", figure))
    return figures


def review_waterfall(review: Review) -> dict | None:
    snap = review.snapshot or {}
    return waterfall_figure(snap["waterfall"]) if snap.get("waterfall") else None
