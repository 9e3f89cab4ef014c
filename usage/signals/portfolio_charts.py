"""Plotly figure dicts for the company metrics page: pure functions of PortfolioMetrics rows.

No queries here; ``static/js/charts.js`` draws the dicts. Money becomes float only at this
last step, for plotting; every number shown as text comes from the Decimal rows.
"""

from __future__ import annotations

from collections.abc import Sequence

SEGMENT_LABELS = {"": "Company", "enterprise": "Enterprise", "mid-market": "Mid-market", "smb": "SMB"}
COLORS = {"": "#1d4ed8", "enterprise": "#7c3aed", "mid-market": "#059669", "smb": "#d97706"}
BASE_LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 40},
    "height": 300,
    "legend": {"orientation": "h", "y": -0.2},
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "hovermode": "x unified",
}


def _num(value) -> float | None:
    return None if value is None else float(value)


def _layout(title: str, **extra) -> dict:
    return {**BASE_LAYOUT, "title": {"text": title, "font": {"size": 14}}, **extra}


def _by_segment(rows: Sequence) -> dict[str, list]:
    series: dict[str, list] = {}
    for row in rows:
        series.setdefault(row.segment, []).append(row)
    return series


def portfolio_figures(rows: Sequence) -> dict[str, dict]:
    """Four figures: run rate vs commitment, NRR/GUR, burn by segment, realization."""
    series = _by_segment(rows)
    company = series.get("", [])
    days = [row.as_of.isoformat() for row in company]
    run_vs_commit = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": "Run rate",
                "x": days,
                "y": [_num(r.run_rate) for r in company],
                "line": {"color": COLORS[""]},
            },
            {
                "type": "scatter",
                "mode": "lines",
                "name": "Committed ARR",
                "x": days,
                "y": [_num(r.committed_arr) for r in company],
                "line": {"color": "#98a2b3", "dash": "dash"},
            },
        ],
        "layout": _layout("Run rate vs committed ARR (company)", yaxis={"tickprefix": "$", "tickformat": ",.3s"}),
    }
    retention = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": f"{metric.upper()} · {SEGMENT_LABELS.get(segment, segment)}",
                "x": [r.as_of.isoformat() for r in seg_rows],
                "y": [_num(getattr(r, metric)) for r in seg_rows],
                "line": {"color": COLORS.get(segment, "#475467"), "dash": "solid" if metric == "nrr" else "dot"},
            }
            for segment, seg_rows in sorted(series.items())
            for metric in ("nrr", "gur")
        ],
        "layout": _layout("NRR (solid) and GUR (dotted) by segment", yaxis={"tickformat": ".0%"}),
    }
    burn = {
        "data": [
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": SEGMENT_LABELS.get(segment, segment),
                "x": [r.as_of.isoformat() for r in seg_rows],
                "y": [_num(r.burn_rate) for r in seg_rows],
                "line": {"color": COLORS.get(segment, "#475467")},
            }
            for segment, seg_rows in sorted(series.items())
        ],
        "layout": _layout(
            "Burn rate by segment (bands at 40% and 70%)",
            yaxis={"tickformat": ".0%"},
            shapes=[
                {
                    "type": "line",
                    "xref": "paper",
                    "x0": 0,
                    "x1": 1,
                    "y0": y,
                    "y1": y,
                    "line": {"dash": "dot", "color": c},
                }
                for y, c in ((0.4, "#d92d20"), (0.7, "#12b76a"))
            ],
        ),
    }
    latest = {segment: seg_rows[-1] for segment, seg_rows in series.items() if segment}
    labels = [SEGMENT_LABELS.get(s, s) for s in sorted(latest)]
    realization = {
        "data": [
            {
                "type": "bar",
                "name": "Committed (trailing 365 days)",
                "x": labels,
                "y": [_num(latest[s].realization_committed) for s in sorted(latest)],
                "marker": {"color": "#98a2b3"},
            },
            {
                "type": "bar",
                "name": "Realized",
                "x": labels,
                "y": [_num(latest[s].realization_realized) for s in sorted(latest)],
                "marker": {"color": COLORS[""]},
            },
        ],
        "layout": _layout(
            "Realization by segment: committed vs consumed",
            barmode="group",
            yaxis={"tickprefix": "$", "tickformat": ",.3s"},
        ),
    }
    return {"run_vs_commit": run_vs_commit, "retention": retention, "burn": burn, "realization": realization}
