"""Plotly figure dicts for the planning pages: pure functions of cohort and waterfall results.

No queries here; ``static/js/charts.js`` draws the dicts. Decimals become floats only here,
for plotting; every number shown as text comes from the Decimal results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from forecasting.cohorts import Cohort
from forecasting.waterfall import Waterfall

SEGMENT_LABELS = {"": "All", "enterprise": "Enterprise", "mid-market": "Mid-market", "smb": "SMB"}
COLORS = {"enterprise": "#7c3aed", "mid-market": "#059669", "smb": "#d97706"}
BASE_LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "height": 340,
    "legend": {"orientation": "h", "y": -0.2},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
}


def money_axis(values: Iterable[float], **axis) -> dict:
    """A y-axis for dollars. Plotly's SI format (",.3s") writes 0.8 as "800m" (milli), so it is
    used only from $1,000 up ("1.5k", "2.3M"); below, plain dollars and cents ("0.8", "250").
    An all-zero series gets a fixed 0–1 range rather than Plotly's guess."""
    peak = max((abs(v) for v in values), default=0.0)
    layout = {"tickprefix": "$", "tickformat": ",.3~s" if peak >= 1000 else ",.2~f", **axis}
    if peak == 0:
        layout |= {"range": [0, 1], "autorange": False}
    return layout


def cohort_figure(ramps: Mapping[str, Cohort]) -> dict:
    """Each segment's pooled median trajectory (× commitment's monthly share), with its
    level-off month marked by a diamond."""
    data = []
    for segment, ramp in ramps.items():
        color = COLORS.get(segment, "#475467")
        label = SEGMENT_LABELS.get(segment, segment)
        months = list(range(1, len(ramp.median) + 1))
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"{label} median",
                "x": months,
                "y": [float(v) for v in ramp.median],
                "line": {"color": color},
            }
        )
        if ramp.level_off is not None:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": f"{label} levels off (month {ramp.level_off})",
                    "x": [ramp.level_off],
                    "y": [float(ramp.median[ramp.level_off - 1])],
                    "marker": {"symbol": "diamond", "size": 14, "color": color, "line": {"width": 1, "color": "#111"}},
                }
            )
    return {
        "data": data,
        "layout": {
            **BASE_LAYOUT,
            "title": {"text": "Median monthly consumption ÷ commitment's monthly share", "font": {"size": 14}},
            "xaxis": {"title": {"text": "Month since first purchase"}, "dtick": 1},
            "yaxis": {"tickformat": ".0%"},
        },
    }


def waterfall_figure(result: Waterfall, **layout) -> dict:
    """Start run rate − churn + new commitments = committed; − run-rate gap = actual."""
    steps = [
        ("Start run rate", "absolute", result.start_run_rate),
        ("Churn", "relative", -result.churn),
        ("New commitments", "relative", result.new_commitments),
        ("Committed", "total", result.committed),
        ("Run-rate gap", "relative", -result.run_rate_gap),
        ("Actual run rate", "total", result.actual),
    ]
    values = [float(value) for _, _, value in steps]
    return {
        "data": [
            {
                "type": "waterfall",
                "orientation": "v",
                "x": [label for label, _, _ in steps],
                "measure": [measure for _, measure, _ in steps],
                # Plotly ignores the y of "total" bars; they are given for the hover text.
                "y": values,
                "connector": {"line": {"color": "#98a2b3"}},
                "increasing": {"marker": {"color": "#059669"}},
                "decreasing": {"marker": {"color": "#dc2626"}},
                "totals": {"marker": {"color": "#1d4ed8"}},
            }
        ],
        "layout": {
            **BASE_LAYOUT,
            "title": {"text": f"Realization waterfall {result.start} → {result.end}", "font": {"size": 14}},
            "yaxis": money_axis([*values, float(result.committed), float(result.start_run_rate)]),
            "showlegend": False,
            **layout,
        },
    }
