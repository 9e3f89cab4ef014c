"""Writes for usage signals: the metrics refresh (snapshots and alert sync) and triage actions."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from revops.errors import ApplicationError
from usage.enqueue import enqueue_assignment_notice

logger = logging.getLogger(__name__)


# --- Shared metrics and alerts ----------------------------------------------------------

# pg_advisory_xact_lock key: one metrics refresh at a time (the nightly job, a rollup-
# triggered one and `manage.py refresh_metrics` may overlap).
METRICS_LOCK = 0x72657630_6D657472


@dataclass
class RefreshResult:
    as_of: dt.date
    accounts: int
    alerts_opened: int = 0
    alerts_updated: int = 0
    alerts_cleared: int = 0
    alerts_evaluated: bool = True
    seconds: float = 0.0


def _owners_on(day: dt.date, roles: list[str]) -> dict[str, dict[int, int]]:
    """role → account id → person id holding it on ``day``; divisions without one inherit
    their nearest ancestor's. The hierarchy is read once for every role."""
    from accounts.models import Account, Ownership

    own: dict[str, dict[int, int]] = {role: {} for role in roles}
    rows = (
        Ownership.objects.filter(role__in=roles, start_on__lte=day)
        .filter(Q(end_on__isnull=True) | Q(end_on__gte=day))
        .values_list("role", "account_id", "person_id")
    )
    for role, account_id, person_id in rows:
        own[role][account_id] = person_id
    parents = dict(Account.objects.values_list("id", "parent_id"))
    result: dict[str, dict[int, int]] = {role: {} for role in roles}
    for role, holders in own.items():
        for account_id in parents:
            node, seen = account_id, set()
            while node is not None and node not in holders and node not in seen:
                seen.add(node)
                node = parents.get(node)
            if node is not None and node in holders:
                result[role][account_id] = holders[node]
    return result


def refresh_metrics(*, as_of: dt.date) -> RefreshResult:
    """Snapshot every account's metrics as of ``as_of``, the portfolio by segment, and
    evaluate alerts. Safe to run twice for the same day: snapshots are replaced and
    alerts are updated, never duplicated. Alerts only move forward: refreshing a day
    earlier than the last evaluated one rewrites snapshots and leaves alerts alone.
    """
    import time

    from accounts.models import Account
    from usage.models import AccountMetrics, AlertSettings, MetricsRefresh, PortfolioMetrics
    from usage.signals.metrics import Thresholds, account_inputs, daily_table, derive, feature_count, portfolio

    started_at = timezone.now()
    clock = time.perf_counter()
    t = Thresholds.from_settings(AlertSettings.current())
    features = feature_count()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [METRICS_LOCK])
        with daily_table(as_of):
            metrics = {
                account_id: derive(inputs, t, feature_count=features)
                for account_id, inputs in account_inputs(as_of=as_of, thresholds=t, shared_daily=True).items()
            }
            own = account_inputs(as_of=as_of, rollup=False, thresholds=t, shared_daily=True)
        computed_at = timezone.now()
        AccountMetrics.objects.filter(as_of=as_of).delete()
        AccountMetrics.objects.bulk_create([_snapshot(m, computed_at) for m in metrics.values()], batch_size=1000)
        segments = dict(Account.objects.values_list("id", "segment"))
        groups: dict[str, list] = {"": list(own.values())}
        for account_id, inputs in own.items():
            groups.setdefault(segments[account_id], []).append(inputs)
        PortfolioMetrics.objects.filter(as_of=as_of).delete()
        PortfolioMetrics.objects.bulk_create(
            [_portfolio_row(portfolio(rows, as_of=as_of, t=t), segment) for segment, rows in sorted(groups.items())]
        )
        result = RefreshResult(as_of=as_of, accounts=len(metrics))
        last = (
            MetricsRefresh.objects.filter(alerts_evaluated=True).order_by("-as_of").values_list("as_of", flat=True)
        ).first()
        if last is None or as_of >= last:
            _sync_alerts(metrics, t, as_of, result)
        else:
            result.alerts_evaluated = False
        result.seconds = time.perf_counter() - clock
        MetricsRefresh.objects.create(
            as_of=as_of,
            started_at=started_at,
            finished_at=timezone.now(),
            accounts=result.accounts,
            alerts_opened=result.alerts_opened,
            alerts_updated=result.alerts_updated,
            alerts_cleared=result.alerts_cleared,
            alerts_evaluated=result.alerts_evaluated,
            seconds=Decimal(f"{result.seconds:.3f}"),
        )
    logger.info("metrics refreshed as of %s: %s", as_of, result)
    return result


# Ratio columns are numeric(12, 4). Growth from a near-zero base (a $0.000002 month, then
# a $5,000 one) is a ratio over 10^8 that would overflow them and fail the whole refresh
# for every account, so such a ratio is stored at the column's limit.
RATIO_COLUMN_LIMIT = Decimal("99999999.9999")


def _ratio_column(value: Decimal | None) -> Decimal | None:
    if value is None:
        return None
    return max(-RATIO_COLUMN_LIMIT, min(RATIO_COLUMN_LIMIT, value))


def _snapshot(m, computed_at: dt.datetime):
    from usage.models import AccountMetrics

    return AccountMetrics(
        account_id=m.account_id,
        as_of=m.as_of,
        run_rate=m.run_rate,
        committed_arr=m.committed_arr,
        burn_rate=_ratio_column(m.burn_rate),
        band=m.band,
        commit_pacing=_ratio_column(m.commit_pacing),
        projected_burn_at_term_end=_ratio_column(m.projected_burn_at_term_end),
        consumption_rate=_ratio_column(m.consumption_rate),
        credit_balance=m.credit_balance,
        credits_run_out_on=m.credits_run_out_on,
        ttfbe_days=m.ttfbe_days,
        mom_growth=_ratio_column(m.mom_growth),
        expansion_velocity=_ratio_column(m.expansion_velocity),
        net_new_arr=m.net_new_arr,
        revenue_30d=m.revenue_30d,
        consumed_in_term=m.consumed_in_term,
        last_usage_on=m.last_usage_on,
        meters_active=m.meters_active,
        workloads=m.workloads,
        feature_adoption=m.feature_adoption,
        health_score=m.health_score,
        health_components=[c.as_dict() for c in m.health_components],
        trend=[str(v) for v in m.trend],
        next_gate=m.next_gate,
        next_gate_on=m.next_gate_on,
        computed_at=computed_at,
    )


def _portfolio_row(p, segment: str):
    from usage.models import PortfolioMetrics

    return PortfolioMetrics(
        as_of=p.as_of,
        segment=segment,
        accounts=p.accounts,
        run_rate=p.run_rate,
        committed_arr=p.committed_arr,
        burn_rate=_ratio_column(p.burn_rate),
        nrr=_ratio_column(p.nrr),
        gur=p.gur,
        median_ttfbe_days=p.median_ttfbe_days,
        expansion_velocity=_ratio_column(p.expansion_velocity),
        consumption_rate=_ratio_column(p.consumption_rate),
        net_new_arr=p.net_new_arr,
        realization_committed=p.realization_committed,
        realization_realized=p.realization_realized,
    )


ALERT_SYNC_FIELDS = [
    "severity",
    "state",
    "revenue_at_risk",
    "gate",
    "gate_on",
    "owner",
    "escalated_to",
    "last_seen_on",
    "details",
    "condition_active",
    "cleared_on",
    "snoozed_until",
    "updated_at",
]


def _sync_alerts(metrics: dict, t, as_of: dt.date, result: RefreshResult) -> None:
    """Open, update and clear alerts so they match the conditions found as of ``as_of``."""
    from accounts.models import OwnerRole
    from usage.models import Alert, AlertEvent, AlertState
    from usage.signals.alerts import RISK_KINDS, evaluate

    owners = _owners_on(as_of, [OwnerRole.CSM, OwnerRole.LAND_AE])
    csm, land_ae = owners[OwnerRole.CSM], owners[OwnerRole.LAND_AE]
    now = timezone.now()
    # What the refresh finds, it finds about the end of ``as_of``: its history says then, not
    # when the job ran (a backfill of past days would otherwise stamp them all "now").
    found_at = min(now, dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC))
    active = {(a.account_id, a.kind): a for a in Alert.objects.filter(condition_active=True)}
    created: list[Alert] = []
    changed: list[Alert] = []
    events: list[AlertEvent] = []
    for account_id, m in metrics.items():
        for c in evaluate(m, t):
            escalate = c.kind in RISK_KINDS and m.band == "escalate"
            alert = active.pop((account_id, c.kind), None)
            if alert is None:
                alert = Alert(
                    account_id=account_id,
                    kind=c.kind,
                    state=AlertState.OPEN,
                    opened_on=as_of,
                    owner_id=csm.get(account_id),
                    escalated_to_id=land_ae.get(account_id) if escalate else None,
                )
                created.append(alert)
            else:
                changed.append(alert)
                if alert.state == AlertState.SNOOZED and alert.snoozed_until and alert.snoozed_until <= as_of:
                    events.append(
                        AlertEvent(
                            alert=alert, at=found_at, action="snooze ended", from_state=alert.state, to_state="open"
                        )
                    )
                    alert.state, alert.snoozed_until = AlertState.OPEN, None
                current_csm = csm.get(account_id)
                if not alert.owner_pinned and current_csm and alert.owner_id != current_csm and alert.is_active:
                    # The account changed hands: the alert follows its new CSM.
                    events.append(
                        AlertEvent(alert=alert, at=found_at, action="reassigned", note="the account's CSM changed")
                    )
                    alert.owner_id = current_csm
                if escalate and alert.escalated_to_id is None and alert.is_active:
                    alert.escalated_to_id = land_ae.get(account_id)
                    if alert.escalated_to_id:
                        events.append(
                            AlertEvent(
                                alert=alert, at=found_at, action="escalated", note="burn under the escalate band"
                            )
                        )
            alert.severity = c.severity
            alert.revenue_at_risk = c.revenue_at_risk
            alert.gate = c.gate
            alert.gate_on = c.gate_on
            alert.details = c.details
            alert.last_seen_on = as_of
            alert.updated_at = now
    for alert in active.values():  # conditions that no longer hold
        alert.condition_active = False
        alert.cleared_on = as_of
        alert.updated_at = now
        if alert.is_active:
            events.append(
                AlertEvent(
                    alert=alert, at=found_at, action="cleared", from_state=alert.state, to_state=AlertState.CLEARED
                )
            )
            alert.state = AlertState.CLEARED
        changed.append(alert)
    Alert.objects.bulk_create(created, batch_size=1000)
    for alert in created:
        events.append(AlertEvent(alert=alert, at=found_at, action="opened", to_state=AlertState.OPEN))
        if alert.escalated_to_id:
            events.append(AlertEvent(alert=alert, at=found_at, action="escalated", note="burn under the escalate band"))
    Alert.objects.bulk_update(changed, ALERT_SYNC_FIELDS, batch_size=1000)
    AlertEvent.objects.bulk_create(events, batch_size=1000)
    _emit_alert_events(events, occurred_at=found_at)
    result.alerts_opened = len(created)
    result.alerts_cleared = len(active)
    result.alerts_updated = len(changed) - len(active)


# AlertEvent action → domain event (revops.events); a resolve is the person's clear.
ALERT_EVENT_TYPES = {"opened": "alert.opened", "escalated": "alert.escalated", "cleared": "alert.cleared"}
ALERT_EVENT_TYPES["resolve"] = "alert.cleared"


def _emit_alert_events(events: list, *, occurred_at: dt.datetime | None = None) -> None:
    """Emit the alert events of a refresh or triage action in one batch per type (so the
    webhooks outbox writes each batch in a few statements, not a row at a time): 2 queries
    for the accounts and the owners' teams, whatever the number of alerts."""
    from accounts.models import Account
    from revops.events import emit_many
    from revops.models import User

    chosen = [e for e in events if e.action in ALERT_EVENT_TYPES]
    if not chosen:
        return
    alerts = [e.alert for e in chosen]
    accounts = {
        pk: (external_id, name)
        for pk, external_id, name in Account.objects.filter(pk__in={a.account_id for a in alerts}).values_list(
            "pk", "external_id", "name"
        )
    }
    people = {a.owner_id for a in alerts} | {a.escalated_to_id for a in alerts}
    teams = dict(User.objects.filter(pk__in=people - {None}).values_list("pk", "team_id"))
    by_type: dict[str, list] = {}
    for event in chosen:
        alert = event.alert
        external_id, name = accounts[alert.account_id]
        data = {
            "alert_id": alert.pk,
            "kind": alert.kind,
            "severity": alert.get_severity_display(),
            "state": alert.state,
            "revenue_at_risk": str(alert.revenue_at_risk),
            "gate": alert.gate,
            "gate_on": alert.gate_on.isoformat() if alert.gate_on else "",
            "opened_on": alert.opened_on.isoformat(),
            "cleared_on": alert.cleared_on.isoformat() if alert.cleared_on else "",
            "account": {"external_id": external_id, "name": name, "link": f"/accounts/{external_id}/"},
            "owner_id": alert.owner_id,
            "escalated_to_id": alert.escalated_to_id,
            "link": f"/alerts/{alert.pk}/history/",
        }
        team_ids = [teams.get(alert.owner_id), teams.get(alert.escalated_to_id)]
        by_type.setdefault(ALERT_EVENT_TYPES[event.action], []).append((data, team_ids))
    for event_type, items in by_type.items():
        emit_many(event_type, items, occurred_at=occurred_at)


# --- Triage actions ---------------------------------------------------------------------

ALERT_ACTIONS: dict[str, tuple[set[str], str | None]] = {
    # action: (states it applies to, state after; None = unchanged)
    "acknowledge": ({"open"}, "acknowledged"),
    "assign": ({"open", "acknowledged", "snoozed"}, None),
    "snooze": ({"open", "acknowledged", "snoozed"}, "snoozed"),
    "resolve": ({"open", "acknowledged", "snoozed"}, "resolved"),
    "dismiss": ({"open", "acknowledged", "snoozed"}, "dismissed"),
}
PAST_TENSE = {
    "acknowledge": "acknowledged",
    "assign": "assigned",
    "snooze": "snoozed",
    "resolve": "resolved",
    "dismiss": "dismissed",
}
SNOOZE_MAX_DAYS = 180


def alert_act(
    *,
    alert_ids: list[int],
    actor,
    action: str,
    today: dt.date,
    note: str = "",
    until: dt.date | None = None,
    assignee=None,
) -> list:
    """Apply one triage action to one or many alerts, all or nothing.

    Every alert is checked first (permission, state, the action's own inputs); one bad
    alert rejects the whole request with a message naming it, and nothing is written.
    """
    from usage.access import can_act_on_alert
    from usage.models import Alert, AlertEvent

    if action not in ALERT_ACTIONS:
        raise ApplicationError(f"Unknown action '{action}'.")
    allowed_from, to_state = ALERT_ACTIONS[action]
    note = note.strip()
    if action == "snooze":
        if until is None:
            raise ApplicationError("Snooze needs a date to snooze until.")
        if until <= today:
            raise ApplicationError(f"Snooze until must be after today ({today}).")
        if until > today + dt.timedelta(days=SNOOZE_MAX_DAYS):
            raise ApplicationError(f"Snooze for at most {SNOOZE_MAX_DAYS} days.")
    if action == "resolve" and not note:
        raise ApplicationError("Resolving needs an outcome note: what was done and what happened.")
    if action == "assign" and (assignee is None or not assignee.is_active):
        raise ApplicationError("Choose an active person to assign to.")
    if not alert_ids:
        raise ApplicationError("Select at least one alert.")
    with transaction.atomic():
        alerts = list(
            Alert.objects.select_for_update(of=("self",))
            .select_related("account", "owner__team")
            .filter(pk__in=alert_ids)
            .order_by("pk")
        )
        if len(alerts) != len(set(alert_ids)):
            raise ApplicationError("Some selected alerts no longer exist; reload the queue.")
        for alert in alerts:
            if not can_act_on_alert(actor, alert):
                raise ApplicationError(f"You cannot act on the {alert.get_kind_display()} alert on {alert.account}.")
            if alert.state not in allowed_from:
                raise ApplicationError(
                    f"The {alert.get_kind_display()} alert on {alert.account} is {alert.get_state_display().lower()}; "
                    f"it cannot be {PAST_TENSE[action]}."
                )
        events = []
        now = timezone.now()
        for alert in alerts:
            alert.updated_at = now
            before = alert.state
            detail = note
            if action == "assign":
                detail = f"assigned to {assignee}" + (f": {note}" if note else "")
                alert.owner = assignee
                alert.owner_pinned = True
            if action == "snooze":
                alert.snoozed_until = until
                detail = f"until {until}" + (f": {note}" if note else "")
            elif to_state is not None:
                alert.snoozed_until = None
            if action == "resolve":
                alert.outcome = note
            if to_state is not None:
                alert.state = to_state
            events.append(
                AlertEvent(
                    alert=alert, actor=actor, action=action, from_state=before, to_state=alert.state, note=detail
                )
            )
        Alert.objects.bulk_update(alerts, ["state", "owner", "owner_pinned", "snoozed_until", "outcome", "updated_at"])
        AlertEvent.objects.bulk_create(events)
        _emit_alert_events(events)
        if action == "assign" and assignee.pk != getattr(actor, "pk", None):
            ids, assignee_id, by_id = [a.pk for a in alerts], assignee.pk, getattr(actor, "pk", None)
            transaction.on_commit(
                lambda: enqueue_assignment_notice(alert_ids=ids, assignee_id=assignee_id, by_id=by_id)
            )
    return alerts
