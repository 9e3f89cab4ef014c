"""The daily alert digest: one email per CSM, one Slack post per team with a webhook.

Slack is a real HTTP server on 127.0.0.1 in a thread that records what is POSTed.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail

from accounts.models import Account, Segment
from revops.models import Role, Team
from usage.models import Alert, AlertKind, AlertState, Severity
from usage.signals.notifications import send_digests

pytestmark = pytest.mark.django_db

ON = dt.date(2026, 11, 21)
SITE = "https://revops.example.test"


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = SITE


@pytest.fixture
def slack():
    """A local webhook receiver: ``slack.url(path)``; ``slack.posts`` is [(path, json body)]."""
    posts: list[tuple[str, dict]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            posts.append((self.path, json.loads(body)))
            self.send_response(500 if self.path.startswith("/broken") else 200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.posts = posts
    server.url = lambda path: f"http://127.0.0.1:{server.server_address[1]}{path}"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def people(ae, team, make_user):
    west = Team.objects.create(name="Sales West")
    return {
        "east": team,
        "west": west,
        "ae": ae,
        "casey": make_user(Role.CSM, team=team, email="casey@example.test", name="Casey Success"),
        "robin": make_user(Role.CSM, team=west, email="robin@example.test", name="Robin Care"),
    }


@pytest.fixture
def alerts(people):
    accounts = {
        key: Account.objects.create(external_id=key, name=key.title(), segment=Segment.ENTERPRISE)
        for key in ("acme", "globex", "initech", "umbrella", "hooli", "stark")
    }

    def alert(account, kind, severity, state, risk, owner, **extra):
        return Alert.objects.create(
            account=accounts[account],
            kind=kind,
            severity=severity,
            state=state,
            revenue_at_risk=Decimal(risk),
            owner=people[owner],
            opened_on=ON - dt.timedelta(days=10),
            last_seen_on=ON - dt.timedelta(days=1),
            **extra,
        )

    return {
        "floor": alert(
            "acme",
            AlertKind.BELOW_FLOOR,
            Severity.CRITICAL,
            AlertState.OPEN,
            "12000",
            "casey",
            gate="clawback_12m",
            gate_on=dt.date(2027, 1, 1),
        ),
        "plateau": alert("globex", AlertKind.PLATEAU, Severity.MEDIUM, AlertState.ACKNOWLEDGED, "3000", "casey"),
        "snoozed_later": alert(
            "initech",
            AlertKind.SUDDEN_DECLINE,
            Severity.HIGH,
            AlertState.SNOOZED,
            "50000",
            "casey",
            snoozed_until=ON + dt.timedelta(days=5),
        ),
        "snooze_over": alert(
            "umbrella",
            AlertKind.CLAWBACK_RISK,
            Severity.HIGH,
            AlertState.SNOOZED,
            "8000",
            "casey",
            snoozed_until=ON,
            gate="clawback_12m",
            gate_on=dt.date(2027, 2, 1),
        ),
        "resolved": alert("hooli", AlertKind.OVER_COMMIT, Severity.LOW, AlertState.RESOLVED, "70000", "casey"),
        "included": alert("globex", AlertKind.INCLUDED_90, Severity.MEDIUM, AlertState.OPEN, "1000", "casey"),
        "small": alert("initech", AlertKind.INCLUDED_70, Severity.LOW, AlertState.OPEN, "100", "casey"),
        "ae_owned": alert("acme", AlertKind.CREDITS_LOW, Severity.LOW, AlertState.OPEN, "500", "ae"),
        "west": alert("stark", AlertKind.NO_FIRST_USAGE, Severity.HIGH, AlertState.OPEN, "20000", "robin"),
    }


def test_each_csm_gets_one_email_with_exactly_their_due_alerts_most_severe_first(alerts):
    result = send_digests(on=ON)

    assert result == {"emails": 2, "slack_posts": 0, "slack_failures": 0}
    by_person = {message.to[0]: message for message in mail.outbox}
    assert set(by_person) == {"casey@example.test", "robin@example.test"}
    casey = by_person["casey@example.test"]
    # Not the one snoozed until later, not the resolved one, not the AE's.
    # At risk counts risk alerts once per account: 12,000 + 8,000 + 3,000 (included volume is an opportunity).
    assert casey.subject == "revops: 5 alerts need you ($23,000.00 at risk) – 2026-11-21"
    assert casey.body == "\n".join(
        [
            "Hello Casey,",
            "",
            "5 alerts on your accounts need attention as of 2026-11-21, most severe first:",
            "",
            "- Critical · Acme (acme) · Burn below the payout floor · $12,000.00 at risk"
            " · gate 12-month clawback on 2027-01-01",
            "- High · Umbrella (umbrella) · Clawback risk · $8,000.00 at risk · gate 12-month clawback on 2027-02-01",
            "- Medium · Globex (globex) · Plateau / stalled adoption · $3,000.00 at risk · no gate",
            "- Medium · Globex (globex) · Included volume at 90% · $1,000.00 at risk · no gate",
            "- Low · Initech (initech) · Included volume at 70% · $100.00 at risk · no gate",
            "",
            f"Triage them: {SITE}/alerts/",
        ]
    )
    html, mimetype = casey.alternatives[0]
    assert mimetype == "text/html"
    assert html.count("<tr><td>") == 5
    assert f"<a href='{SITE}/alerts/'>Open the triage queue</a>" in html
    assert "Stark" not in casey.body
    assert "Stark (stark)" in by_person["robin@example.test"].body


def test_html_in_names_is_escaped(alerts):
    Account.objects.filter(external_id="acme").update(name="<b>Acme</b>")

    send_digests(on=ON)

    html = next(m for m in mail.outbox if m.to == ["casey@example.test"]).alternatives[0][0]
    assert "&lt;b&gt;Acme&lt;/b&gt;" in html
    assert "<b>Acme" not in html


def test_nothing_due_sends_nothing(people):
    assert send_digests(on=ON) == {"emails": 0, "slack_posts": 0, "slack_failures": 0}
    assert mail.outbox == []


def test_each_team_with_a_webhook_gets_a_summary_posted(alerts, people, slack):
    Team.objects.filter(pk=people["east"].pk).update(slack_webhook_url=slack.url("/east"))
    Team.objects.filter(pk=people["west"].pk).update(slack_webhook_url=slack.url("/west"))

    result = send_digests(on=ON)

    assert result == {"emails": 2, "slack_posts": 2, "slack_failures": 0}
    posts = dict(slack.posts)
    # Sales East: Casey's 5 due alerts and the AE's credits alert; top 5 by revenue at risk.
    assert posts["/east"] == {
        "text": "\n".join(
            [
                "*Sales East: 6 active alerts as of 2026-11-21* ($23,000.00 at risk): "
                "1 critical, 1 high, 2 medium, 2 low",
                "Top 5 by revenue at risk:",
                "• $12,000.00 Acme (acme): Burn below the payout floor, critical, owner Casey",
                "• $8,000.00 Umbrella (umbrella): Clawback risk, high, owner Casey",
                "• $3,000.00 Globex (globex): Plateau / stalled adoption, medium, owner Casey",
                "• $1,000.00 Globex (globex): Included volume at 90%, medium, owner Casey",
                "• $500.00 Acme (acme): Credits running out, low, owner Avery",
                f"<{SITE}/alerts/|Open the triage queue>",
            ]
        )
    }
    assert posts["/west"]["text"].startswith(
        "*Sales West: 1 active alert as of 2026-11-21* ($20,000.00 at risk): 1 high"
    )


def test_a_failing_webhook_is_counted_and_the_rest_still_go(alerts, people, slack, caplog):
    Team.objects.filter(pk=people["east"].pk).update(slack_webhook_url=closed_port_url())
    Team.objects.filter(pk=people["west"].pk).update(slack_webhook_url=slack.url("/west"))

    result = send_digests(on=ON)

    assert result == {"emails": 2, "slack_posts": 1, "slack_failures": 1}
    assert len(mail.outbox) == 2
    assert [path for path, _ in slack.posts] == ["/west"]
    assert "slack webhook post failed" in caplog.text


def test_a_webhook_answering_an_error_is_a_failure(alerts, people, slack):
    Team.objects.filter(pk=people["east"].pk).update(slack_webhook_url=slack.url("/broken"))
    Team.objects.filter(pk=people["west"].pk).update(slack_webhook_url=slack.url("/west"))

    result = send_digests(on=ON)

    assert (result["slack_posts"], result["slack_failures"]) == (1, 1)
    assert sorted(path for path, _ in slack.posts) == ["/broken", "/west"]


def test_a_webhook_that_is_not_http_is_a_failure_without_a_request(alerts, people, slack):
    Team.objects.filter(pk=people["east"].pk).update(slack_webhook_url="ftp://files.example.test/hook")

    result = send_digests(on=ON)

    assert result == {"emails": 2, "slack_posts": 0, "slack_failures": 1}
    assert slack.posts == []


def test_the_daily_task_sends_the_digest(alerts):
    from usage.tasks import send_alert_digests

    result = send_alert_digests()

    assert result["emails"] >= 1
    assert {m.to[0] for m in mail.outbox} <= {"casey@example.test", "robin@example.test"}


def test_assigning_alerts_emails_the_assignee_and_posts_to_their_teams_slack(
    alerts, people, slack, mailoutbox, django_capture_on_commit_callbacks
):
    from usage.signals.notifications import notify_assignment
    from usage.signals.services import alert_act

    Team.objects.filter(pk=people["west"].pk).update(slack_webhook_url=slack.url("/west"))
    lead = people["ae"]
    lead.role = Role.ADMIN
    lead.save(update_fields=["role"])
    ids = [alerts["floor"].pk, alerts["plateau"].pk]

    with django_capture_on_commit_callbacks() as callbacks:
        alert_act(alert_ids=ids, actor=lead, action="assign", today=ON, assignee=people["robin"])
    assert len(callbacks) == 1  # the notice is sent once the assignment commits

    result = notify_assignment(alert_ids=ids, assignee_id=people["robin"].pk, by_id=lead.pk)

    assert result == {"emails": 1, "slack_posts": 1}
    [email] = mailoutbox
    assert email.to == ["robin@example.test"]
    # Acme 12,000 and Globex 3,000: two accounts, each counted once.
    assert email.subject == f"revops: {lead.name} assigned you 2 alerts ($15,000.00 at risk)"
    assert "Acme (acme) · Burn below the payout floor" in email.body
    [(path, body)] = slack.posts
    assert path == "/west" and f"{lead.name} assigned Robin Care 2 alerts" in body["text"]


def test_assigning_an_alert_to_oneself_sends_nothing(alerts, people, django_capture_on_commit_callbacks):
    from usage.signals.services import alert_act

    with django_capture_on_commit_callbacks() as callbacks:
        alert_act(
            alert_ids=[alerts["floor"].pk], actor=people["casey"], action="assign", today=ON, assignee=people["casey"]
        )

    assert callbacks == []
