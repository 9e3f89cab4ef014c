"""Who may reach what: every URL pattern of the project, as every role and anonymously.

The demo company (a small one) gives each role real objects: the AE's own account and
one outside their book, alerts on each, a statement line of the AE and of another seller,
a draft and a final review. ``MATRIX`` says, for every URL pattern, which identities may
use it; the test drives a request per pattern × identity and fails on any cell that
differs: a refusal where access is due, an answer where it is not (a leak), or a 5xx.
A URL pattern missing from the matrix fails the test: new URLs cannot ship without
saying who may use them.

"May use" means the answer is not 401/403/404 nor a redirect to the login; "may not"
means it is one of those (404 for an object outside one's scope). POST-only patterns
are posted with an empty form: an allowed identity then gets a validation answer or a
redirect, never a refusal.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from revops.models import Role, SavedView, User

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

EVERYONE = frozenset(Role.values)
COMPANY = frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN})
ALL_ACCOUNTS = COMPANY | {Role.PRODUCT}
DATA = frozenset({Role.FINANCE, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})
NOBODY: frozenset[str] = frozenset()
# Patterns not ours to authorize: Django's admin (admin role, through allauth's login and
# its second factor: tests/revops/test_auth.py) and allauth's own login/MFA pages.
FOREIGN_PREFIXES = ("admin/", "auth/")


@dataclass(frozen=True)
class Cell:
    name: str  # "namespace:name" (or the route for an unnamed pattern)
    path: str  # with the sample objects filled in, "{...}" from the world
    may: frozenset[str]  # roles that may use it; "anon" is never in here unless public
    method: str = "get"
    public: bool = False  # anonymous may use it too
    fresh: str = ""  # a world factory making a new object per request ("{fresh}" in the path)


def cells(w: dict) -> list[Cell]:
    """Every pattern with its sample path; object routes twice: in and out of the AE's scope."""
    own, other = w["own_account"], w["other_account"]
    return [
        Cell("home", "/", EVERYONE),
        Cell("people", "/people/", EVERYONE),
        Cell("system_status", "/system/", ADMIN),
        Cell("docs", "/docs/metrics/", EVERYONE),
        Cell("docs_example", "/docs/examples/people.csv", EVERYONE),
        Cell("health", "/health", EVERYONE, public=True),
        Cell("favicon.ico", "/favicon.ico", EVERYONE, public=True),
        Cell("saved_view_save", "/saved-views/", EVERYONE, "post"),  # one's own views, on a list one may open
        Cell("saved_view_delete", f"/saved-views/{w['saved_view']}/delete/", frozenset({Role.AE}), "post"),
        # usage: data in
        Cell("usage:imports", "/data/imports/", DATA),
        Cell("usage:import_job", f"/data/imports/{w['job']}/", DATA),
        Cell("usage:quarantine", "/data/quarantine/", DATA),
        Cell("usage:quarantine_replay", "/data/quarantine/replay/", DATA, "post"),
        Cell("usage:api_keys", "/data/api-keys/", DATA),
        Cell("usage:api_key_revoke", f"/data/api-keys/{w['key']}/revoke/", DATA, "post"),
        # usage: signals
        Cell("usage:alerts", "/alerts/", EVERYONE),
        Cell("usage:alert_bulk", "/alerts/bulk/", w["alert_bulk"], "post"),
        Cell("usage:alert_action", f"/alerts/{w['own_alert']}/act/", w["act_own_alert"], "post"),
        Cell("usage:alert_action", f"/alerts/{w['other_alert']}/act/", w["act_other_alert"], "post"),
        Cell("usage:alert_forms", f"/alerts/{w['own_alert']}/forms/", w["act_own_alert"]),
        Cell("usage:alert_history", f"/alerts/{w['own_alert']}/history/", w["see_own_alert"]),
        Cell("usage:alert_history", f"/alerts/{w['other_alert']}/history/", w["see_other_alert"]),
        Cell("usage:book", "/book/", w["book"]),
        Cell("usage:book_csv", "/book.csv", w["book"]),
        Cell("usage:company", "/metrics/", ALL_ACCOUNTS),
        Cell("usage:alert_settings", "/system/alert-settings/", ADMIN),
        Cell("usage:opportunities", "/opportunities/", EVERYONE),  # each viewer's own scope
        # home panels: each for the roles whose home page shows it (revops.home)
        Cell("usage:home_triage", "/home/triage/", frozenset({Role.CSM, Role.LEADER, Role.ADMIN})),
        Cell("usage:home_gates", "/home/gates/", frozenset({Role.AE, Role.CSM})),
        Cell("usage:home_opportunities", "/home/opportunities/", frozenset({Role.AE, Role.CSM, Role.LEADER})),
        Cell("usage:home_data", "/home/data/", DATA),
        Cell("usage:home_team", "/home/team/", frozenset({Role.LEADER, Role.ADMIN})),
        Cell("usage:home_meters", "/home/meters/", frozenset({Role.PRODUCT, Role.LEADER})),
        Cell("comp:home_pay", "/comp/home/pay/", frozenset({Role.AE, Role.CSM})),
        Cell("reviews:home_review", "/reviews/home/review/", frozenset({Role.LEADER, Role.PRODUCT, Role.FINANCE})),
        Cell("reviews:home_releases", "/reviews/home/releases/", frozenset({Role.PRODUCT})),
        Cell("comp:home_close", "/comp/home/close/", DATA),
        *[
            Cell(f"usage:panel_{panel}", f"/usage/accounts/{account}/{route}/", may)
            for panel, route in (("metrics", "metrics"), ("usage_chart", "usage-chart"), ("alerts", "alerts"))
            for account, may in ((own, w["see_own_account"]), (other, w["see_other_account"]))
        ],
        Cell("usage:account_days", f"/usage/accounts/{own}/days/?days=30", w["see_own_account"]),
        Cell("usage:account_days", f"/usage/accounts/{other}/days/", w["see_other_account"]),
        # accounts
        *[
            Cell(f"accounts:{name}", f"/accounts/{account}/{route}", may, method)
            for name, route, method in (
                ("account", "", "get"),
                ("activities", "activities/", "get"),
                ("billing", "billing/", "get"),  # whoever sees the account sees its invoices
            )
            for account, may in ((own, w["see_own_account"]), (other, w["see_other_account"]))
        ],
        Cell("accounts:plan", f"/accounts/{own}/plan/", w["plan_own_account"], "post"),
        Cell("accounts:plan", f"/accounts/{other}/plan/", w["plan_other_account"], "post"),
        # comp
        Cell("comp:plans", "/comp/plans/", COMPANY),
        Cell("comp:plan_upload", "/comp/plans/upload/", DATA),
        Cell("comp:plan_detail", f"/comp/plans/{w['plan']}/", COMPANY),
        Cell("comp:plan_download", f"/comp/plans/{w['plan']}/plan.yaml", COMPANY),
        Cell("comp:whatif", "/comp/plans/whatif/", DATA),
        Cell("comp:whatif_new", f"/comp/plans/whatif/new/?plan={w['plan']}", DATA),
        Cell("comp:whatif_draft", f"/comp/plans/whatif/{w['whatif_draft']}/", DATA),
        Cell("comp:whatif_run_new", f"/comp/plans/whatif/{w['whatif_draft']}/run/", DATA, "post"),
        Cell("comp:whatif_publish", f"/comp/plans/whatif/{w['whatif_draft']}/publish/", DATA, "post"),
        Cell("comp:whatif_run", f"/comp/plans/whatif/runs/{w['whatif_run']}/", DATA),
        Cell("comp:statements", "/comp/statements/", w["statements"]),
        Cell("comp:approve_month", "/comp/statements/close/approve/", DATA, "post"),
        Cell("comp:mark_paid", "/comp/statements/close/paid/", DATA, "post"),
        Cell("comp:payroll_csv", f"/comp/statements/{w['period']}/payroll.csv", DATA),
        Cell("comp:statement", f"/comp/statements/{w['ae']}/{w['period']}/", w["see_ae_pay"]),
        Cell("comp:statement", f"/comp/statements/{w['other_ae']}/{w['period']}/", w["see_other_pay"]),
        Cell("comp:statement_csv", f"/comp/statements/{w['ae']}/{w['period']}.csv", w["see_ae_pay"]),
        Cell("comp:statement_csv", f"/comp/statements/{w['other_ae']}/{w['period']}.csv", w["see_other_pay"]),
        Cell("comp:statement_approve", f"/comp/statements/{w['ae']}/{w['period']}/approve/", DATA, "post"),
        Cell("comp:estimator", f"/comp/statements/{w['ae']}/estimator/", w["estimate_ae"]),
        Cell("comp:estimator", f"/comp/statements/{w['other_ae']}/estimator/", w["estimate_other"]),
        Cell("comp:cs_outlook", f"/comp/statements/{w['csm']}/nrr/", w["see_csm_pay"]),
        Cell("comp:cs_outlook", f"/comp/statements/{w['other_csm']}/nrr/", w["see_other_pay"]),  # not the CSM's
        Cell("comp:cs_outlook", f"/comp/statements/{w['ae']}/nrr/", NOBODY),  # no CS plan: nothing to see
        Cell("comp:line", f"/comp/statements/lines/{w['ae_line']}/", w["see_ae_pay"]),
        Cell("comp:line", f"/comp/statements/lines/{w['other_line']}/", w["see_other_pay"]),
        Cell("comp:inquiry_raise", f"/comp/statements/lines/{w['ae_line']}/inquiries/", w["raise_ae"], "post"),
        Cell("comp:inquiry_raise", f"/comp/statements/lines/{w['other_line']}/inquiries/", w["raise_other"], "post"),
        Cell("comp:inquiry_answer", f"/comp/statements/inquiries/{w['inquiry']}/answer/", DATA, "post"),
        # forecasting
        Cell("forecasting:forecast", "/forecasts/", w["forecasts"]),
        Cell("forecasting:accuracy", "/forecasts/accuracy/", w["forecasts"]),
        Cell("forecasting:account_panel", f"/forecasts/accounts/{own}/", w["see_own_account"]),
        Cell("forecasting:account_panel", f"/forecasts/accounts/{other}/", w["see_other_account"]),
        Cell("forecasting:cohorts", "/planning/cohorts/", COMPANY),
        Cell("forecasting:deal_desk", "/planning/deal-desk/", COMPANY),
        Cell("forecasting:deal_desk_store", "/planning/deal-desk/store/", DATA, "post"),
        Cell("forecasting:waterfall", "/planning/waterfall/", COMPANY),
        # reviews
        Cell("reviews:index", "/reviews/", EVERYONE),
        Cell("reviews:open", "/reviews/open/", COMPANY, "post"),
        Cell("reviews:analysis_product", "/reviews/analysis/product/", ALL_ACCOUNTS),
        Cell("reviews:analysis_releases", "/reviews/analysis/releases/", ALL_ACCOUNTS),
        Cell("reviews:analysis_release", f"/reviews/analysis/releases/{w['release']}/", ALL_ACCOUNTS),
        Cell("reviews:analysis_pilots", "/reviews/analysis/pilots/", ALL_ACCOUNTS),
        Cell("reviews:analysis_pilot", f"/reviews/analysis/pilots/{w['pilot']}/", ALL_ACCOUNTS),
        Cell("reviews:detail", f"/reviews/{w['final']}/", EVERYONE),
        Cell("reviews:detail", f"/reviews/{w['draft']}/", w["prepare"]),
        Cell("reviews:print", f"/reviews/{w['final']}/print/", EVERYONE),
        Cell("reviews:pattern_new", f"/reviews/{w['draft']}/patterns/new/", w["sales"]),
        Cell("reviews:pattern_edit", f"/reviews/{w['draft']}/patterns/{w['pattern']}/", w["sales"]),
        Cell("reviews:decision_new", f"/reviews/{w['draft']}/decisions/new/", w["product"]),
        Cell("reviews:decision_edit", f"/reviews/{w['draft']}/decisions/{w['decision']}/", w["product"]),
        Cell("reviews:action_add", f"/reviews/{w['draft']}/actions/", w["prepare"], "post"),
        Cell("reviews:action_status", f"/reviews/{w['draft']}/actions/{w['action']}/status/", w["prepare"], "post"),
        Cell(
            "reviews:remove",
            f"/reviews/{w['draft']}/actions/{{fresh}}/remove/",
            w["prepare"],
            "post",
            fresh="new_action",
        ),
        Cell("reviews:finalize", f"/reviews/{w['draft']}/finalize/", w["finalize"], "post"),
        # the API: a session works like a read key of the same person
        Cell("api-v1:openapi-json", "/api/v1/openapi.json", EVERYONE, public=True),
        Cell("api-v1:openapi-view", "/api/v1/docs", EVERYONE, public=True),
        Cell("api-v1:post_events", "/api/v1/events", NOBODY, "post"),  # keys only, never a session
        Cell("api-v1:account_metrics", f"/api/v1/accounts/{own}/metrics", w["see_own_account"]),
        Cell("api-v1:account_metrics", f"/api/v1/accounts/{other}/metrics", w["see_other_account"]),
        Cell("api-v1:portfolio_metrics", "/api/v1/metrics", EVERYONE),
        Cell("api-v1:alerts", "/api/v1/alerts", EVERYONE),
        Cell("api-v1:statement", f"/api/v1/statements?user=ae@example.com&period={w['period']}", w["see_ae_pay"]),
        Cell(
            "api-v1:statement",
            f"/api/v1/statements?user={w['other_ae_email']}&period={w['period']}",
            w["see_other_pay"],
        ),
        Cell("api-v1:account_forecast", f"/api/v1/forecasts/accounts/{own}", w["see_own_account"]),
        Cell("api-v1:account_forecast", f"/api/v1/forecasts/accounts/{other}", w["see_other_account"]),
        Cell("api-v1:forecast_accuracy", "/api/v1/forecasts/accuracy", w["forecasts"]),
        Cell("api-v1:api-root", "/api/v1/", NOBODY, public=False),
        # integrations: Data → Connections, and the account page's CRM link
        Cell("integrations:connections", "/data/connections/", DATA),
        Cell("integrations:connection", f"/data/connections/{w['crm_connection']}/", DATA),
        Cell("integrations:mapping", f"/data/connections/{w['crm_connection']}/mapping/", DATA, "post"),
        Cell("integrations:run", f"/data/connections/{w['crm_connection']}/run/", DATA, "post"),
        Cell("integrations:run_detail", f"/data/connections/runs/{w['crm_run']}/", DATA),
        Cell("integrations:account_link", f"/data/connections/accounts/{own}/crm-link/", w["see_own_account"]),
        # integrations: Data → Warehouse (warehouse sources and their pulls)
        Cell("integrations:warehouse_sources", "/data/connections/warehouse/", DATA),
        Cell("integrations:warehouse_sources", "/data/connections/warehouse/", DATA, "post"),
        Cell("integrations:warehouse_source", f"/data/connections/warehouse/{w['wh_source']}/", DATA),
        Cell("integrations:warehouse_source", f"/data/connections/warehouse/{w['wh_source']}/", DATA, "post"),
        Cell("integrations:warehouse_preview", f"/data/connections/warehouse/{w['wh_source']}/preview/", DATA, "post"),
        Cell("integrations:warehouse_pull_now", f"/data/connections/warehouse/{w['wh_source']}/pull/", DATA, "post"),
        Cell("integrations:warehouse_pull", f"/data/connections/warehouse/pulls/{w['wh_pull']}/", DATA),
        Cell("integrations:account_link", f"/data/connections/accounts/{other}/crm-link/", w["see_other_account"]),
        # integrations: Data → Stripe (billing source) and Stripe's public, signed webhook endpoint
        Cell("integrations:stripe_connections", "/data/connections/stripe/", DATA),
        Cell("integrations:stripe_connections", "/data/connections/stripe/", DATA, "post"),
        Cell("integrations:stripe_connection", f"/data/connections/stripe/{w['stripe']}/", DATA),
        Cell("integrations:stripe_domain_add", f"/data/connections/stripe/{w['stripe']}/domains/", DATA, "post"),
        Cell(
            "integrations:stripe_domain_remove",
            f"/data/connections/stripe/{w['stripe']}/domains/{w['stripe_domain']}/remove/",
            DATA,
            "post",
        ),
        Cell("integrations:stripe_sync", f"/data/connections/stripe/{w['stripe']}/sync/", DATA, "post"),
        Cell("integrations:stripe_run", f"/data/connections/stripe/runs/{w['stripe_run']}/", DATA),
        Cell("stripe_webhook", f"/hooks/stripe/{w['stripe']}/", EVERYONE, "post", public=True),  # 400 unsigned
        # exports: Data → Exports (targets, test, run now, run log) and the read API's cursor
        Cell("exports:targets", "/data/exports/", DATA),
        Cell("exports:target", f"/data/exports/{w['export_target']}/", DATA),
        Cell("exports:test", f"/data/exports/{w['export_target']}/test/", DATA, "post"),
        Cell("exports:run", f"/data/exports/{w['export_target']}/run/", DATA, "post"),
        Cell("exports:run_detail", f"/data/exports/runs/{w['export_run']}/", DATA),
        Cell("api-v1:export_tables", "/api/v1/exports", EVERYONE),
        Cell("api-v1:export_rows", "/api/v1/exports/rollups", EVERYONE),  # each reader's own scope
        # webhooks: Data → Webhooks (finance and admin, like every data connection)
        Cell("webhooks:endpoints", "/data/webhooks/", DATA),
        Cell("webhooks:endpoint", f"/data/webhooks/{w['webhook_endpoint']}/", DATA),
        Cell("webhooks:edit", f"/data/webhooks/{w['webhook_endpoint']}/edit/", DATA, "post"),
        Cell("webhooks:rotate", f"/data/webhooks/{w['webhook_endpoint']}/rotate/", DATA, "post"),
        Cell("webhooks:test", f"/data/webhooks/{w['webhook_endpoint']}/test/", DATA, "post"),
        Cell("webhooks:delivery", f"/data/webhooks/deliveries/{w['webhook_delivery']}/", DATA),
        Cell("webhooks:replay", f"/data/webhooks/deliveries/{w['webhook_delivery']}/replay/", DATA, "post"),
        # sso: the login page's "continue with single sign-on" (anyone), and SCIM (bearer token of an
        # identity provider only: every session and anonymous get 401; tests/revops/test_scim.py)
        Cell("sso:start", "/sso/start/", EVERYONE, "post", public=True),
        Cell("sso:scim_config", "/scim/v2/ServiceProviderConfig", NOBODY),
        Cell("sso:scim_resource_types", "/scim/v2/ResourceTypes", NOBODY),
        Cell("sso:scim_resource_type", "/scim/v2/ResourceTypes/User", NOBODY),
        Cell("sso:scim_schemas", "/scim/v2/Schemas", NOBODY),
        Cell("sso:scim_schema", "/scim/v2/Schemas/urn:ietf:params:scim:schemas:core:2.0:User", NOBODY),
        Cell("sso:scim_users", "/scim/v2/Users", NOBODY),
        Cell("sso:scim_user", f"/scim/v2/Users/{w['ae']}", NOBODY),
        Cell("sso:scim_groups", "/scim/v2/Groups", NOBODY),
        Cell("sso:scim_group", "/scim/v2/Groups/1", NOBODY),
        Cell("sso:scim_search", "/scim/v2/.search", NOBODY, "post"),
        Cell("sso:scim_not_found", "/scim/v2/Elsewhere", NOBODY),
    ]


IDENTITIES = ("anon", *Role.values)


def _export_samples() -> dict:
    """An export target (a folder under the system's temp dir) and a run of it, for exports' cells."""
    import tempfile

    from exports.models import ExportRun, ExportTarget

    target = ExportTarget.objects.create(
        name="Lake", url=f"file://{tempfile.mkdtemp(prefix='matrix-exports-')}", formats=["csv"], tables=["rollups"]
    )
    return {"export_target": target.pk, "export_run": ExportRun.objects.create(target=target).pk}


def _world() -> dict:
    """A small demo company and the sample objects of every route."""
    import datetime as dt

    from accounts.access import accounts_visible_to
    from accounts.models import Account
    from comp.models import Inquiry, LedgerLine, Plan, PlanType
    from reviews.models import ActionItem, ProductDecision, Review, ReviewStatus, SalesPattern
    from revops.api_keys import api_key_create
    from revops.clock import today_utc
    from usage.models import Alert, ImportJob, ImportKind, ProductRelease

    call_command("seed_demo", "--accounts", "24", "--months", "6")
    people = {role: User.objects.filter(role=role).order_by("email").first() for role in Role.values}
    ae = User.objects.get(email="ae@example.com")
    people[Role.AE] = ae
    today = today_utc()
    mine = accounts_visible_to(ae, on=today)
    csms = accounts_visible_to(User.objects.get(email="csm@example.com"), on=today)
    # The AE's own account is not the CSM's; the other account is neither's.
    own = mine.filter(parent__isnull=True).exclude(pk__in=csms).order_by("external_id").first()
    other = Account.objects.exclude(pk__in=mine).exclude(pk__in=csms).order_by("external_id").first()
    # On the AE's book, a CSM's to work and not escalated to the AE (who could then act on it).
    own_alert = (
        Alert.objects.filter(account__in=mine, owner__role=Role.CSM).exclude(escalated_to=ae).order_by("pk").first()
    )
    other_alert = (
        Alert.objects.exclude(account__in=mine).exclude(owner__team=people[Role.CSM].team).order_by("pk").first()
    )
    ae_line = LedgerLine.objects.filter(person=ae).order_by("-period", "pk").first()
    other_line = (
        LedgerLine.objects.filter(person__role=Role.AE, period=ae_line.period).exclude(person=ae).order_by("pk").first()
    )
    inquiry = Inquiry.objects.create(line=ae_line, raised_by=ae)
    # An alert outside the AE's book and outside the CS team's queue: another seller owns it.
    other_alert = Alert.objects.exclude(account__in=mine).exclude(account__in=csms).order_by("pk").first()
    Alert.objects.filter(pk=other_alert.pk).update(owner=other_line.person, escalated_to=None)
    final = Review.objects.filter(status=ReviewStatus.FINAL).order_by("-month").first()
    draft = Review.objects.filter(status=ReviewStatus.DRAFT).order_by("-month").first()
    pattern = SalesPattern.objects.create(review=draft, title="t", detail="d", author=people[Role.LEADER])
    decision = ProductDecision.objects.create(review=draft, title="t", rationale="r", author=people[Role.PRODUCT])

    def new_action() -> int:
        return ActionItem.objects.create(
            review=draft,
            title="t",
            owner=ae,
            owner_name=ae.name,
            due_on=today + dt.timedelta(days=7),
            first_raised=draft.month,
        ).pk

    action = new_action()
    # A plan what-if draft and a replay of it that ran (comp.whatif), as finance makes them.
    from comp.whatif import draft_create, draft_document, whatif_execute, whatif_run_create

    plan = Plan.objects.exclude(type=PlanType.PILOT).order_by("pk").first()
    whatif_draft = draft_create(
        title="What-if", document=draft_document(plan), based_on=plan, user=people[Role.FINANCE]
    )
    whatif_run = whatif_run_create(draft=whatif_draft, months=3, user=people[Role.FINANCE])
    whatif_execute(run_id=whatif_run.pk)
    samples = {"own": own, "other": other, "own_alert": own_alert, "other_alert": other_alert, "ae_line": ae_line}
    samples |= {"other_line": other_line, "final": final, "draft": draft}
    assert all(samples.values()), [name for name, value in samples.items() if value is None]
    job = ImportJob.objects.create(
        kind=ImportKind.USAGE, file_name="u.csv", path="/nonexistent", sha256="x", size_bytes=1
    )
    key, _ = api_key_create(name="k", scopes=["events:write"], created_by=people[Role.ADMIN])
    from integrations.models import Connection, RunKind, SyncRun

    crm = Connection.objects.create(name="CRM", provider="salesforce", base_url="https://example.my.salesforce.com")
    crm_run = SyncRun.objects.create(connection=crm, kind=RunKind.READ)
    from integrations.crypto import encrypt_json
    from integrations.models import WarehousePull, WarehouseSource

    wh_source = WarehouseSource.objects.create(
        name="Warehouse",
        dialect="postgresql",
        url_encrypted=encrypt_json({"url": "postgresql+psycopg://r@127.0.0.1:9/w"}),
        url_display="postgresql+psycopg://r@127.0.0.1:9/w",
        table="daily_usage",
        mapping={"account": "a", "meter": "m", "day": "d", "quantity": "q"},
    )
    wh_pull = WarehousePull.objects.create(source=wh_source, state="failed", error="refused")
    from integrations.models import BillingDomain, StripeConnection, StripeRun

    stripe_connection = StripeConnection.objects.create(name="Stripe", usage_start=today)
    stripe_run = StripeRun.objects.create(connection=stripe_connection, state="failed", error="refused")
    stripe_domain = BillingDomain.objects.create(connection=stripe_connection, domain="example.com", account=own)
    from webhooks.models import Delivery, DeliveryState, Endpoint, Message
    from webhooks.services import endpoint_create

    hook = endpoint_create(name="Hooks", url="https://hooks.example.com/in", event_types=["alert.opened"]).endpoint
    hook_message = Message.objects.create(
        webhook_id="msg_matrix",
        type="alert.opened",
        body='{"type":"alert.opened","timestamp":"2026-01-01T00:00:00+00:00","data":{}}',
        occurred_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    hook_delivery = Delivery.objects.create(
        endpoint=hook,
        message=hook_message,
        sequence=1,
        state=DeliveryState.DELIVERED,
        next_attempt_at=hook_message.created_at,
        created_at=hook_message.created_at,
    )
    Endpoint.objects.filter(pk=hook.pk).update(next_sequence=2)
    return {
        "webhook_endpoint": hook.pk,
        "webhook_delivery": hook_delivery.pk,
        "crm_connection": crm.pk,
        "crm_run": crm_run.pk,
        "wh_source": wh_source.pk,
        "wh_pull": wh_pull.pk,
        "stripe": stripe_connection.pk,
        "stripe_run": stripe_run.pk,
        "stripe_domain": stripe_domain.pk,
        **_export_samples(),
        "people": people,
        "ae": ae.pk,
        "other_ae": other_line.person_id,
        "csm": people[Role.CSM].pk,
        "other_csm": User.objects.filter(role=Role.CSM).exclude(pk=people[Role.CSM].pk).order_by("email").first().pk,
        "other_ae_email": other_line.person.email,
        "own_account": own.external_id,
        "other_account": other.external_id,
        "own_alert": own_alert.pk,
        # the AE's: anyone else's delete is a 404 (each identity posts to a view it does not own)
        "saved_view": SavedView.objects.create(user=ae, list_key="book", name="Mine", query="sort=burn").pk,
        "other_alert": other_alert.pk,
        "period": f"{ae_line.period:%Y-%m}",
        "ae_line": ae_line.pk,
        "other_line": other_line.pk,
        "inquiry": inquiry.pk,
        "plan": plan.pk,
        "whatif_draft": whatif_draft.pk,
        "whatif_run": whatif_run.pk,
        "pilot": Plan.objects.filter(type=PlanType.PILOT).order_by("pk").first().pk,
        "release": ProductRelease.objects.order_by("pk").first().pk,
        "final": f"{final.month:%Y-%m}",
        "draft": f"{draft.month:%Y-%m}",
        "pattern": pattern.pk,
        "decision": decision.pk,
        "action": action,
        "new_action": new_action,
        "job": job.pk,
        "key": key.pk,
    } | EXPECTED


def _refused(response) -> bool:
    if response.status_code in (401, 403, 404):
        return True
    location = response.get("Location", "") if response.status_code in (301, 302) else ""
    return location.startswith(("/auth/login", "/auth/2fa"))


def _refused_by_the_service(response) -> bool:
    """A POST the view took but its service refused, saying why (a message, then a redirect)."""
    from django.contrib.messages import constants, get_messages

    return any(message.level == constants.ERROR for message in get_messages(response.wsgi_request))


def holds(cell: Cell, expected: bool, response) -> bool:
    """The cell holds: no 5xx, and access exactly when it is due."""
    refused = _refused(response) or (cell.method == "post" and not expected and _refused_by_the_service(response))
    return response.status_code < 500 and refused != expected


def _project_patterns(resolver: URLResolver | None = None, prefix: str = "", namespace: str = "") -> set[str]:
    found = set()
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if route.startswith(FOREIGN_PREFIXES):
            continue
        if isinstance(pattern, URLResolver):
            inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            found |= _project_patterns(pattern, route, inner)
        elif isinstance(pattern, URLPattern):
            found.add(namespace + pattern.name if pattern.name else route)
    return found


def test_every_url_pattern_has_its_row_and_every_cell_holds(with_totp):
    world = _world()
    table = cells(world)
    assert _project_patterns() - {cell.name for cell in table} == set(), "URL patterns without a matrix row"

    clients = {"anon": Client()}
    for role in Role.values:
        person = world["people"][role]
        if not person.authenticator_set.exists():
            with_totp(person)  # finance and admin must have their second factor
        clients[role] = Client()
        clients[role].force_login(person)

    wrong, answered = [], 0
    for cell in table:
        for who in IDENTITIES:
            path = cell.path.format(fresh=world[cell.fresh]()) if cell.fresh else cell.path
            response = getattr(clients[who], cell.method)(path)
            answered += 1
            expected = cell.public or (who != "anon" and who in cell.may)
            refused = _refused(response) or (
                cell.method == "post" and not expected and _refused_by_the_service(response)
            )
            if response.status_code >= 500 or refused == expected:
                wrong.append(
                    f"{cell.method.upper()} {path} as {who}: {response.status_code} (expected {'access' if expected else 'refusal'})"
                )
    print(f"authorization matrix: {len(table)} rows × {len(IDENTITIES)} identities = {answered} cells")
    assert wrong == [], "\n".join(wrong)


# Who may use the object routes, by what the scope helpers grant (see each app's access.py).
EXPECTED = {
    "book": EVERYONE,  # one's own book (finance and product have none: an empty page)
    "alert_bulk": frozenset({Role.CSM, Role.LEADER, Role.ADMIN}),
    "act_own_alert": frozenset({Role.CSM, Role.LEADER, Role.ADMIN}),
    "act_other_alert": frozenset({Role.LEADER, Role.ADMIN}),
    "see_own_alert": EVERYONE,
    "see_other_alert": ALL_ACCOUNTS,
    "see_own_account": ALL_ACCOUNTS | {Role.AE},
    "see_other_account": ALL_ACCOUNTS,
    "plan_own_account": frozenset({Role.AE, Role.ADMIN}),  # its owners write the plan
    "plan_other_account": frozenset({Role.ADMIN}),
    "statements": EVERYONE,  # the index of the statements one may see (none for product)
    "see_ae_pay": frozenset({Role.AE, Role.LEADER, Role.FINANCE, Role.ADMIN}),
    "see_other_pay": frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN}),
    "see_csm_pay": frozenset({Role.CSM, Role.LEADER, Role.FINANCE, Role.ADMIN}),  # as statements
    "estimate_ae": frozenset({Role.AE}),  # one's own pay, planned by oneself
    "estimate_other": NOBODY,
    "raise_ae": frozenset({Role.AE}),
    "raise_other": NOBODY,
    "forecasts": EVERYONE,
    "prepare": frozenset({Role.LEADER, Role.FINANCE, Role.PRODUCT, Role.ADMIN}),
    "sales": frozenset({Role.LEADER, Role.ADMIN}),
    "product": frozenset({Role.PRODUCT, Role.ADMIN}),
    "finalize": COMPANY,
}


def test_api_keys_read_as_their_person_and_nothing_else(with_totp):
    """The API rows again, with keys instead of sessions: a read key as the AE gets the
    AE's cells; an events-only key, a revoked key and a key whose creator left read nothing."""
    from revops.api_keys import api_key_create, api_key_revoke

    world = _world()
    ae, admin = world["people"][Role.AE], world["people"][Role.ADMIN]
    leaver = User.objects.create_user(email="leaver@example.com", password=None, role=Role.ADMIN, name="Lee Ver")
    keys = {
        "read as ae": api_key_create(name="r", scopes=["read"], created_by=admin, acts_as=ae)[1],
        "events only": api_key_create(name="e", scopes=["events:write"], created_by=admin)[1],
        "revoked": api_key_create(name="x", scopes=["read", "events:write"], created_by=admin, acts_as=ae),
        "creator left": api_key_create(name="l", scopes=["read", "events:write"], created_by=leaver, acts_as=ae)[1],
    }
    api_key_revoke(key=keys["revoked"][0])
    keys["revoked"] = keys["revoked"][1]
    leaver.is_active = False
    leaver.save()

    wrong, answered = [], 0
    reads = [cell for cell in cells(world) if cell.name.startswith("api-v1:") and not cell.public and cell.may]
    for cell in reads:
        for name, raw in keys.items():
            response = Client().get(cell.path, headers={"Authorization": f"Bearer {raw}"})
            answered += 1
            expected = name == "read as ae" and Role.AE in cell.may
            if response.status_code >= 500 or _refused(response) == expected:
                wrong.append(f"GET {cell.path} with the {name} key: {response.status_code}")
    for name, raw in keys.items():
        response = Client().post(
            "/api/v1/events", "[]", content_type="application/json", headers={"Authorization": f"Bearer {raw}"}
        )
        answered += 1
        if _refused(response) == (name == "events only"):
            wrong.append(f"POST /api/v1/events with the {name} key: {response.status_code}")
    print(f"API key cells: {answered}")
    assert wrong == [], "\n".join(wrong)


class _Answer(dict):
    def __init__(self, status: int, location: str = "") -> None:
        super().__init__({"Location": location} if location else {})
        self.status_code = status


@pytest.mark.parametrize(
    ("expected", "answer", "holds_"),
    [
        (True, _Answer(200), True),
        (True, _Answer(403), False),  # refused where access is due
        (False, _Answer(200), False),  # a leak
        (False, _Answer(404), True),
        (False, _Answer(302, "/auth/login/?next=/x/"), True),
        (True, _Answer(302, "/x/"), True),
        (True, _Answer(500), False),
        (False, _Answer(500), False),
    ],
)
def test_the_matrix_tells_a_leak_and_a_wrong_refusal_from_a_holding_cell(expected, answer, holds_):
    assert holds(Cell("x", "/x/", NOBODY), expected, answer) is holds_
