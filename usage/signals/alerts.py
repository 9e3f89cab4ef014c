"""Burn-rate and adoption alerts (docs/metrics.md, "Alerts").

``evaluate`` is pure: one account's metrics in, the alert conditions that hold out, each
with severity, revenue at risk, the comp gate it threatens and the inputs behind it.
``usage.signals.services.refresh_metrics`` syncs them into ``Alert`` rows (one per account and
kind while the condition holds) and the triage actions live in ``usage.signals.services`` too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from usage.models import AlertKind, Gate, Severity
from usage.signals.metrics import (
    CENT,
    CHECKPOINT_DAYS,
    CLAWBACK_DAYS,
    TREND_DAYS,
    ZERO,
    Metrics,
    Thresholds,
    _q,
    ratio,
    robust_run_rates,
)

# Kinds that signal risk (escalated to the land AE when the account burns under 40%);
# the rest are opportunities for the account team. Credits running out early means the
# customer consumes faster than they bought: a renewal or top-up conversation, not a risk,
# so it puts no revenue at risk (Expansion opportunities lists it).
RISK_KINDS = frozenset(
    {
        AlertKind.BELOW_FLOOR,
        AlertKind.CLAWBACK_RISK,
        AlertKind.SUDDEN_DECLINE,
        AlertKind.PLATEAU,
        AlertKind.NO_FIRST_USAGE,
    }
)
OPPORTUNITY_KINDS = frozenset(
    {AlertKind.OVER_COMMIT, AlertKind.CREDITS_LOW, AlertKind.INCLUDED_70, AlertKind.INCLUDED_90}
)


def revenue_at_risk_total(alerts: Iterable) -> Decimal:
    """Revenue at risk over a set of alerts, **each account counted once**: an account's
    risk alerts measure overlapping shortfalls against the same commitment (below the
    floor, clawback risk, a decline…), so the account contributes the largest of them,
    never their sum. Opportunity kinds contribute nothing."""
    largest: dict[int, Decimal] = {}
    for alert in alerts:
        if alert.kind in RISK_KINDS:
            largest[alert.account_id] = max(largest.get(alert.account_id, ZERO), alert.revenue_at_risk)
    return sum(largest.values(), ZERO)


@dataclass
class Condition:
    kind: str
    severity: int
    revenue_at_risk: Decimal
    gate: str
    gate_on: dt.date | None
    details: dict = field(default_factory=dict)


def _s(value) -> str | None:
    return None if value is None else str(value)


def evaluate(m: Metrics, t: Thresholds) -> list[Condition]:
    """The alert conditions that hold for one account as of ``m.as_of``."""
    found: list[Condition] = []
    d = m.as_of
    i = m.inputs
    gate, gate_on = m.next_gate, m.next_gate_on
    committed = m.committed_arr
    land = m.land_on
    days_since_land = None if land is None else (d - land).days
    shortfall = max(ZERO, committed - m.run_rate)

    # Burn under the payout floor at or after the 90-day checkpoint.
    if (
        committed > 0
        and m.burn_rate is not None
        and days_since_land is not None
        and days_since_land >= CHECKPOINT_DAYS
        and m.burn_rate < t.payout_floor
    ):
        in_window = days_since_land < CLAWBACK_DAYS
        found.append(
            Condition(
                AlertKind.BELOW_FLOOR,
                Severity.CRITICAL if in_window else Severity.HIGH,
                shortfall,
                Gate.CLAWBACK_12M if in_window else Gate.NONE,
                land + dt.timedelta(days=CLAWBACK_DAYS) if in_window else None,
                {"burn_rate": _s(m.burn_rate), "floor": _s(t.payout_floor), "days_since_land": days_since_land},
            )
        )

    # Clawback risk: the robust run rate (weekday medians over 4 weeks) projected to the
    # 12-month mark along its change from the 4 weeks before; a short dip moves neither level.
    levels = robust_run_rates(i.series)
    if (
        committed > 0
        and levels is not None
        and days_since_land is not None
        and CHECKPOINT_DAYS <= days_since_land < CLAWBACK_DAYS
    ):
        recent, previous = levels
        days_left = Decimal(CLAWBACK_DAYS - days_since_land)
        projected = _q(max(ZERO, recent + (recent - previous) * days_left / TREND_DAYS), CENT)
        projected_burn = ratio(projected, committed)
        if projected_burn is not None and projected_burn < t.clawback_floor:
            found.append(
                Condition(
                    AlertKind.CLAWBACK_RISK,
                    Severity.HIGH,
                    _q(max(ZERO, committed - projected), CENT),
                    Gate.CLAWBACK_12M,
                    land + dt.timedelta(days=CLAWBACK_DAYS),
                    {
                        "projected_run_rate_at_12_months": _s(projected),
                        "projected_burn": _s(projected_burn),
                        "floor": _s(t.clawback_floor),
                        "robust_run_rate": _s(_q(recent, CENT)),
                        "robust_run_rate_4_weeks_before": _s(_q(previous, CENT)),
                    },
                )
            )

    if m.decline is not None:
        risk = m.decline.annualized_shortfall
        found.append(
            Condition(
                AlertKind.SUDDEN_DECLINE,
                Severity.HIGH if committed == 0 or risk >= committed * Decimal("0.10") else Severity.MEDIUM,
                risk,
                gate,
                gate_on,
                {
                    "days": m.decline.days,
                    "expected": _s(_q(m.decline.expected, CENT)),
                    "actual": _s(_q(m.decline.actual, CENT)),
                    "drop": _s(t.decline_drop),
                },
            )
        )

    # Plateau: run rate flat (± tolerance) over the plateau window, past the ramp, under the expand band.
    if (
        committed > 0
        and m.burn_rate is not None
        and m.burn_rate < t.expand_band
        and days_since_land is not None
        and days_since_land > CHECKPOINT_DAYS
        and i.rev_n > 0
        and i.rev_n_plateau_ago > 0
    ):
        change = i.rev_n / i.rev_n_plateau_ago - 1
        midway = i.rev_n_half_plateau_ago / i.rev_n_plateau_ago - 1
        if abs(change) <= t.plateau_tolerance and abs(midway) <= t.plateau_tolerance:
            found.append(
                Condition(
                    AlertKind.PLATEAU,
                    Severity.MEDIUM,
                    _q(max(ZERO, committed * t.expand_band - m.run_rate), CENT),
                    gate,
                    gate_on,
                    {
                        "change": _s(_q(change)),
                        "days": t.plateau_days,
                        "tolerance": _s(t.plateau_tolerance),
                        "burn_rate": _s(m.burn_rate),
                    },
                )
            )

    if days_since_land is not None and days_since_land >= t.no_usage_days and i.first_usage_on is None:
        found.append(
            Condition(
                AlertKind.NO_FIRST_USAGE,
                Severity.CRITICAL if days_since_land >= 2 * t.no_usage_days else Severity.HIGH,
                committed,
                gate,
                gate_on,
                {"days_since_start": days_since_land, "threshold_days": t.no_usage_days},
            )
        )

    if i.included_units:
        used = i.included_used / i.included_units
        details = {
            "used": _s(i.included_used),
            "included": _s(i.included_units),
            "share": _s(_q(used)),
            "month": d.strftime("%Y-%m"),
        }
        if used >= t.included_critical:
            found.append(Condition(AlertKind.INCLUDED_90, Severity.MEDIUM, ZERO, "", None, details))
        elif used >= t.included_warn:
            found.append(Condition(AlertKind.INCLUDED_70, Severity.LOW, ZERO, "", None, details))

    if i.credits and m.credit_balance is not None:
        low = m.credit_balance <= i.credits * t.credits_low_fraction
        early = m.credits_run_out_on is not None and i.credits_end is not None and m.credits_run_out_on < i.credits_end
        if low or early:
            soon = m.credits_run_out_on is not None and (m.credits_run_out_on - d).days <= 30
            found.append(
                Condition(
                    AlertKind.CREDITS_LOW,
                    Severity.HIGH if soon else Severity.MEDIUM,
                    ZERO,  # an opportunity (buy more credits), not revenue at risk
                    gate,
                    gate_on,
                    {
                        "balance": _s(m.credit_balance),
                        "purchased": _s(i.credits),
                        "run_out_on": _s(m.credits_run_out_on),
                        "term_end": _s(i.credits_end),
                    },
                )
            )

    if m.burn_rate is not None and m.burn_rate > 1:
        found.append(
            Condition(
                AlertKind.OVER_COMMIT,
                Severity.LOW,
                ZERO,
                "",
                None,
                {"burn_rate": _s(m.burn_rate), "run_rate": _s(m.run_rate), "committed_arr": _s(committed)},
            )
        )
    return found


# --- Alert inputs in words (pages and digests) ----------------------------------------------

# Each key an alert's details may hold: its label and how to show its value.
DETAIL_FORMATS: dict[str, tuple[str, str]] = {
    "burn_rate": ("Burn rate", "pct"),
    "floor": ("Floor", "pct"),
    "days_since_land": ("Days since land", "days"),
    "projected_run_rate_at_12_months": ("Projected run rate at 12 months", "money"),
    "projected_burn": ("Projected burn at 12 months", "pct"),
    "robust_run_rate": ("Run rate, last 4 weeks (robust)", "money"),
    "robust_run_rate_4_weeks_before": ("Run rate, the 4 weeks before (robust)", "money"),
    "previous_run_rate": ("Previous run rate", "money"),
    "run_rate": ("Run rate", "money"),
    "committed_arr": ("Committed ARR", "money"),
    "days": ("Days", "days"),
    "expected": ("Expected revenue", "money2"),
    "actual": ("Actual revenue", "money2"),
    "drop": ("Drop threshold", "pct"),
    "change": ("Change over the window", "pct"),
    "tolerance": ("Tolerance", "pct"),
    "days_since_start": ("Days since the contract started", "days"),
    "threshold_days": ("Alert after", "days"),
    "used": ("Used this month", "number"),
    "included": ("Included a month", "number"),
    "share": ("Share of included used", "pct"),
    "month": ("Month", "text"),
    "balance": ("Credit balance", "money2"),
    "purchased": ("Credits purchased", "money2"),
    "run_out_on": ("Credits run out on", "date"),
    "term_end": ("Term ends", "date"),
}


def alert_inputs(details: dict) -> list[tuple[str, str]]:
    """An alert's inputs as (label, formatted value): percentages, money, days and dates, never
    field keys or raw fractions."""
    from revops.templatetags.fmt import money, pct

    shown = []
    for key, value in details.items():
        label, kind = DETAIL_FORMATS.get(key, (key.replace("_", " ").capitalize(), "text"))
        if value is None or value == "":
            text = "—"
        elif kind == "pct":
            text = pct(value)
        elif kind == "money":
            text = money(value) + " a year"
        elif kind == "money2":
            text = money(value, 2)
        elif kind == "days":
            text = f"{value} day{'s' if str(value) != '1' else ''}"
        elif kind == "number":
            text = f"{Decimal(str(value)):,.0f}"
        else:
            text = str(value)
        shown.append((label, text))
    return shown
