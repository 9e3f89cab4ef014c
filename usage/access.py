"""Who may manage usage data (imports, quarantine, API keys) and see or act on alerts."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet
from django.http import Http404

from accounts.access import accounts_visible_to
from revops.access import people_in_scope, sees_company
from revops.models import Role

DATA_ROLES = frozenset({Role.FINANCE, Role.ADMIN})
# Roles whose triage queue is theirs to work (the others read alerts on their accounts).
TRIAGE_ROLES = frozenset({Role.CSM, Role.LEADER, Role.ADMIN})


def can_manage_data(user) -> bool:
    return bool(user.is_authenticated and user.role in DATA_ROLES)


def can_manage_api_keys(user) -> bool:
    """Admins and finance manage keys (finance connects BI and billing tools); a key never
    reads more than its creator may (``api_key_create`` enforces it)."""
    return bool(user.is_authenticated and user.role in DATA_ROLES)


def can_change_alert_settings(user) -> bool:
    return bool(user.is_authenticated and user.role == Role.ADMIN)


def alerts_visible_to(user, *, on: dt.date) -> QuerySet:
    """Alerts ``user`` may see: company-wide roles all of them; others those owned by or
    escalated to someone in their scope (themself, their teams), plus alerts on accounts
    they may see (an AE reads the alerts on their book); a CSM also sees their CS team's."""
    from usage.models import Alert

    if not user.is_authenticated or not user.is_active:
        return Alert.objects.none()
    if sees_company(user):
        return Alert.objects.all()
    scope = people_in_scope(user)
    visible = Q(owner__in=scope) | Q(escalated_to__in=scope) | Q(account__in=accounts_visible_to(user, on=on))
    if user.role == Role.CSM and user.team_id:
        visible |= Q(owner__team_id=user.team_id)  # a CS team works its queue together
    return Alert.objects.filter(visible)


def can_act_on_alert(user, alert) -> bool:
    """Acting (acknowledge, assign, snooze, resolve, dismiss) is for the alert's owner, the
    land AE it was escalated to, CSMs of the owner's team, that team's manager and admins.
    A CSM cannot act on another team's alert, whatever they can see."""
    if not user.is_authenticated or not user.is_active:
        return False
    if user.role == Role.ADMIN or user.pk in (alert.owner_id, alert.escalated_to_id):
        return True
    owner = alert.owner
    if owner is None:
        return user.role in TRIAGE_ROLES
    if owner.team_id is None:
        return False
    if owner.team.manager_id == user.pk:
        return True
    return user.role == Role.CSM and user.team_id == owner.team_id


def alert_for(user, alert_id: int, *, on: dt.date):
    """The alert if ``user`` may see it, else 404."""
    from usage.models import Alert

    try:
        return alerts_visible_to(user, on=on).select_related("account", "owner__team", "escalated_to").get(pk=alert_id)
    except Alert.DoesNotExist:
        raise Http404("No such alert.") from None
