"""The daily alert digest: one email per CSM, one Slack post per team with a webhook.

An alert is in the digest while it needs someone: open or acknowledged, or snoozed
until a day that has come (the nightly refresh re-opens those, but the digest may run
before it). A Slack webhook that fails is logged and counted; it never stops the emails
or the other teams' posts.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import logging
import urllib.request
from collections import defaultdict
from decimal import Decimal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from revops.models import Role, Team
from usage.models import Alert, AlertState, Severity
from usage.signals.alerts import revenue_at_risk_total

logger = logging.getLogger(__name__)

SLACK_TIMEOUT_S = 10
SLACK_TOP = 5
ORDER = ("-severity", "-revenue_at_risk", "gate_on", "pk")


def digest_alerts(*, on: dt.date) -> QuerySet[Alert]:
    """Alerts that need attention on ``on``, most severe first."""
    due = Q(state__in=[AlertState.OPEN, AlertState.ACKNOWLEDGED]) | Q(state=AlertState.SNOOZED, snoozed_until__lte=on)
    return Alert.objects.filter(due).select_related("account", "owner").order_by(*ORDER)


def _money(value: Decimal) -> str:
    return f"${value:,.2f}"


def _queue_url() -> str:
    return settings.SITE_URL.rstrip("/") + reverse("usage:alerts")


def _line(alert: Alert) -> str:
    gate = f"gate {alert.get_gate_display()} on {alert.gate_on}" if alert.gate_on else "no gate"
    return (
        f"{alert.get_severity_display()} · {alert.account.name} ({alert.account.external_id}) · "
        f"{alert.get_kind_display()} · {_money(alert.revenue_at_risk)} at risk · {gate}"
    )


def digest_email(*, person, alerts: list[Alert], on: dt.date) -> EmailMultiAlternatives:
    """One person's digest: plain text and a simple HTML table, most severe first."""
    url = _queue_url()
    total = revenue_at_risk_total(alerts)
    count = f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
    subject = f"revops: {count} need you ({_money(total)} at risk) – {on:%Y-%m-%d}"
    text = "\n".join(
        [
            f"Hello {person.get_short_name()},",
            "",
            f"{count} on your accounts need attention as of {on}, most severe first:",
            "",
            *(f"- {_line(a)}" for a in alerts),
            "",
            f"Triage them: {url}",
        ]
    )
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{} ({})</td><td>{}</td><td style='text-align:right'>{}</td><td>{}</td></tr>",
        (
            (
                a.get_severity_display(),
                a.account.name,
                a.account.external_id,
                a.get_kind_display(),
                _money(a.revenue_at_risk),
                f"{a.get_gate_display()} on {a.gate_on}" if a.gate_on else "—",
            )
            for a in alerts
        ),
    )
    html = format_html(
        "<p>Hello {},</p><p>{} on your accounts need attention as of {}, most severe first:</p>"
        "<table cellpadding='4'><thead><tr><th>Severity</th><th>Account</th><th>Alert</th>"
        "<th>Revenue at risk</th><th>Gate</th></tr></thead><tbody>{}</tbody></table>"
        "<p><a href='{}'>Open the triage queue</a></p>",
        person.get_short_name(),
        count,
        on,
        rows,
        url,
    )
    message = EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [person.email])
    message.attach_alternative(html, "text/html")
    return message


def slack_text(*, team: Team, alerts: list[Alert], on: dt.date) -> str:
    """Counts by severity and the top alerts by revenue at risk, in Slack's mrkdwn."""
    total = revenue_at_risk_total(alerts)
    by_severity = defaultdict(int)
    for alert in alerts:
        by_severity[alert.severity] += 1
    counts = ", ".join(f"{by_severity[s]} {Severity(s).label.lower()}" for s in Severity.values if by_severity[s])
    top = sorted(alerts, key=lambda a: (-a.revenue_at_risk, -a.severity, a.pk))[:SLACK_TOP]
    lines = [
        f"*{team.name}: {len(alerts)} active alert{'s' if len(alerts) != 1 else ''} as of {on}* "
        f"({_money(total)} at risk): {counts}",
        f"Top {len(top)} by revenue at risk:",
        *(
            f"• {_money(a.revenue_at_risk)} {a.account.name} ({a.account.external_id}): {a.get_kind_display()}, "
            f"{a.get_severity_display().lower()}, owner {a.owner.get_short_name() if a.owner else 'none'}"
            for a in top
        ),
        f"<{_queue_url()}|Open the triage queue>",
    ]
    return "\n".join(lines)


def post_to_slack(url: str, text: str) -> bool:
    """POST ``{"text": ...}`` to an incoming webhook; False (logged) on any failure."""
    if urlsplit(url).scheme not in ("http", "https"):
        # Never log the URL itself: a webhook URL is its own credential.
        logger.warning("slack webhook with scheme %r is not an http(s) URL; not posted", urlsplit(url).scheme)
        return False
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url, data=json.dumps({"text": text}).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=SLACK_TIMEOUT_S) as response:  # noqa: S310
            response.read()
    except (OSError, ValueError, http.client.HTTPException):  # URLError, HTTPError, timeouts, bad replies
        logger.exception("slack webhook post failed")
        return False
    return True


def send_digests(*, on: dt.date) -> dict:
    """Email each CSM their alerts that need attention, then post each team's summary to
    its Slack webhook. Returns {"emails": n, "slack_posts": n, "slack_failures": n}."""
    # Every read happens before anything is sent: a database error (which the task
    # retries) must not come after some emails went out, or they would go twice.
    alerts = list(digest_alerts(on=on))
    teams = {team.pk: team for team in Team.objects.exclude(slack_webhook_url="")}

    by_csm: dict[int, list[Alert]] = defaultdict(list)
    for alert in alerts:
        owner = alert.owner
        if owner is not None and owner.role == Role.CSM and owner.is_active and owner.email:
            by_csm[owner.pk].append(alert)
    messages = [digest_email(person=rows[0].owner, alerts=rows, on=on) for rows in by_csm.values()]
    emails = get_connection().send_messages(messages) if messages else 0

    posts = failures = 0
    by_team: dict[int, list[Alert]] = defaultdict(list)
    for alert in alerts:
        if alert.owner is not None and alert.owner.team_id in teams:
            by_team[alert.owner.team_id].append(alert)
    for team_id, rows in by_team.items():
        team = teams[team_id]
        if post_to_slack(team.slack_webhook_url, slack_text(team=team, alerts=rows, on=on)):
            posts += 1
        else:
            failures += 1
            logger.warning("slack digest for team %s (%s) was not delivered", team.pk, team.name)
    result = {"emails": emails or 0, "slack_posts": posts, "slack_failures": failures}
    logger.info("alert digests for %s: %s", on, result)
    return result


def assignment_email(*, person, alerts: list[Alert], by) -> EmailMultiAlternatives:
    """To the person alerts were just assigned to: what, on which accounts, how much at risk."""
    count = f"{len(alerts)} alert{'s' if len(alerts) != 1 else ''}"
    who = by.name if by is not None else "Someone"
    total = revenue_at_risk_total(alerts)
    subject = f"revops: {who} assigned you {count} ({_money(total)} at risk)"
    text = "\n".join(
        [
            f"Hello {person.get_short_name()},",
            "",
            f"{who} assigned you {count}:",
            "",
            *(f"- {_line(a)}" for a in alerts),
            "",
            f"Your queue: {_queue_url()}",
        ]
    )
    return EmailMultiAlternatives(subject, text, settings.DEFAULT_FROM_EMAIL, [person.email])


def notify_assignment(*, alert_ids: list[int], assignee_id: int, by_id: int | None) -> dict:
    """Email the assignee and post to their team's Slack webhook (when it has one)."""
    from revops.models import User

    person = User.objects.filter(pk=assignee_id, is_active=True).select_related("team").first()
    alerts = list(Alert.objects.filter(pk__in=alert_ids, owner_id=assignee_id).select_related("account", "owner"))
    if person is None or not alerts:
        return {"emails": 0, "slack_posts": 0}
    by = User.objects.filter(pk=by_id).first() if by_id else None
    emails = (
        get_connection().send_messages([assignment_email(person=person, alerts=alerts, by=by)]) if person.email else 0
    )
    posts = 0
    team = person.team
    if team is not None and team.slack_webhook_url:
        who = by.name if by is not None else "Someone"
        lines = [f"*{who} assigned {person.name} {len(alerts)} alert{'s' if len(alerts) != 1 else ''}*"]
        lines += [f"• {_money(a.revenue_at_risk)} {a.account.name}: {a.get_kind_display()}" for a in alerts[:SLACK_TOP]]
        posts = int(post_to_slack(team.slack_webhook_url, "\n".join(lines)))
    return {"emails": emails or 0, "slack_posts": posts}
