"""The snapshot's metric table as display rows, and other frozen values as they are shown:
formatting only, from the frozen strings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reviews.labels import partial_label
from revops.templatetags.fmt import money_short, pct

# key → how its frozen value is shown
COLUMNS = (
    ("accounts", "count"),
    ("run_rate", "money"),
    ("committed_arr", "money"),
    ("burn_rate", "pct"),
    ("nrr", "pct"),
    ("gur", "pct"),
    ("median_ttfbe_days", "days"),
    ("expansion_velocity", "pct"),
    ("net_new_arr", "money"),
    ("realization_committed", "money"),
    ("realization_realized", "money"),
    ("realization_gap", "money"),
)


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    definition: str


@dataclass(frozen=True)
class Row:
    label: str
    is_total: bool
    cells: list[str]
    previous: list[str]


def _show(value, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "money":
        return money_short(value)
    if kind == "pct":
        return pct(value)
    if kind == "days":
        return f"{value} d"
    return str(value)


def metrics_table(snapshot: dict) -> tuple[list[Column], list[Row]]:
    definitions = snapshot.get("definitions", {})
    columns = [
        Column(key, definitions.get(key, {}).get("label", key), definitions.get(key, {}).get("definition", ""))
        for key, _ in COLUMNS
    ]
    previous = {r["segment"]: r for r in snapshot.get("previous_metrics", [])}
    rows = []
    for r in snapshot.get("metrics", []):
        before = previous.get(r["segment"], {})
        rows.append(
            Row(
                label=r["label"],
                is_total=r["segment"] == "",
                cells=[_show(r.get(key), kind) for key, kind in COLUMNS],
                previous=[_show(before.get(key), kind) if before else "" for key, kind in COLUMNS],
            )
        )
    return columns, rows


def evidence_partial(evidence: dict | None) -> str:
    """ "partial: 14 of 30 days" when a decision's monthly usage evidence stops inside its
    last month (a review of a month still running), else ""."""
    evidence = evidence or {}
    usage = evidence.get("usage") or []
    if not usage or not evidence.get("as_of") or not usage[0].get("months"):
        return ""
    last = dt.date.fromisoformat(usage[0]["months"][-1][:10])
    return partial_label(last, dt.date.fromisoformat(evidence["as_of"]))
