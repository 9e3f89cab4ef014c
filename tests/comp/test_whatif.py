"""Plan what-if (comp.whatif): drafts, the replay beside the ledger, the job, publishing, pages.

The history is five months run with ``run_comp`` in order (December 2025 before the
window, January–April 2026 in it), on the engine tests' helpers:

- Avery, land AE on Land (10%, half at signature, half at day 90 over a 25% floor) and a
  recoverable $3,000 draw: Acme signs $240,000 on 2026-01-01 and burns 30.42% at day 90.
- Eve, expand AE on Expand (10%, no tiers, a monthly quota) on Globex, which has no
  contract (no land split): Globex's revenue grows by exactly $1 a day, so every window of
  L days is up $1 × L on each of its days, L × L in all, × 365 / L = $365 × L of net-new
  ARR, and the commission is $36.50 × L: $1,131.50 for a 31-day month, $1,022.00 for
  February. Whole cents at 10% and at 12% (× 1.2: $1,357.80, $1,226.40).
- Cass, CSM on CS (NRR curve): $6,250.00 for the first quarter, as in the engine tests.

January is approved after its run, and finance answers an inquiry of Avery's with a $50.00
adjustment in February (a line no run made).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

import pytest
import yaml
from django.db import connection
from django.urls import reverse

from accounts.models import OwnerRole
from comp import whatif
from comp.engine import run_comp
from comp.models import (
    Attainment,
    CompRun,
    LedgerLine,
    LineKind,
    PlanDraft,
    PlanType,
    PlanVersion,
    Statement,
    StatementStatus,
    WhatIfRun,
)
from comp.plans import PlansRejected, plan_document
from comp.tasks import run_whatif
from revops.models import Role
from tests.comp.test_engine import CS, DRAW, EXPAND, LAND, assign, contract, make_account, make_meter, make_plan, own
from usage.models import DailyRollup

pytestmark = pytest.mark.django_db

D = dt.date
DEC, JAN, FEB, MAR, APR = D(2025, 12, 1), D(2026, 1, 1), D(2026, 2, 1), D(2026, 3, 1), D(2026, 4, 1)
WINDOW = [JAN, FEB, MAR, APR]
TODAY = D(2026, 5, 14)  # the last four complete months are January to April
EARLY = D(2025, 1, 1)


def daily(account, meter, first: dt.date, last: dt.date, revenue) -> None:
    """One rollup a day; ``revenue`` is a function of the day."""
    DailyRollup.objects.bulk_create(
        DailyRollup(
            account=account,
            meter=meter,
            day=first + dt.timedelta(days=k),
            quantity=Decimal(1),
            revenue=revenue(first + dt.timedelta(days=k)),
            event_count=1,
        )
        for k in range((last - first).days + 1)
    )


@pytest.fixture
def company(make_user):
    avery = make_user(Role.AE, name="Avery Land", email="avery@example.test")
    eve = make_user(Role.AE, name="Eve Expand", email="eve@example.test")
    cass = make_user(Role.CSM, name="Cass Success", email="cass@example.test")
    meter = make_meter("api-calls")
    land, expand, cs, draw = (
        make_plan(PlanType.LAND, LAND),
        make_plan(PlanType.EXPAND, EXPAND),
        make_plan(PlanType.CS, CS),
        make_plan(PlanType.DRAW, DRAW),
    )
    assign(avery, land)
    assign(avery, draw)
    expansion = assign(eve, expand, start=DEC, period="month")
    assign(cass, cs, start=JAN)
    acme, globex, initech = make_account("acme"), make_account("globex"), make_account("initech")
    own(acme, avery)
    own(globex, eve, OwnerRole.EXPAND_AE)
    own(initech, cass, OwnerRole.CSM)
    contract(acme, "240000", signed=JAN, end=D(2027, 12, 31))
    daily(acme, meter, D(2026, 3, 3), D(2026, 4, 1), lambda day: Decimal(200))
    origin = D(2025, 10, 1)
    daily(globex, meter, origin, D(2026, 4, 30), lambda day: Decimal(100 + (day - origin).days))
    daily(initech, meter, D(2025, 3, 2), D(2025, 3, 31), lambda day: Decimal(100))
    daily(initech, meter, D(2026, 3, 2), D(2026, 3, 31), lambda day: Decimal(110))
    finance = make_user(Role.FINANCE, name="Fin Ance", email="fin@example.test")
    for month in (DEC, *WINDOW):
        run_comp(period=month)
        if month == JAN:
            for person in (avery, eve, cass):
                Statement.objects.create(person=person, period=JAN, status=StatementStatus.APPROVED)
        if month == FEB:
            LedgerLine.objects.create(
                person=avery,
                period=FEB,
                kind=LineKind.ADJUSTMENT,
                key="inquiry:1",
                amount=Decimal("50.00"),
                created_by=finance,
            )
    return {
        "avery": avery,
        "eve": eve,
        "cass": cass,
        "finance": finance,
        "plans": {"land": land.plan, "expand": expand.plan, "cs": cs.plan, "draw": draw.plan},
        "expansion": expansion,
    }


def draft_of(*plans, **changes) -> list[whatif.DraftVersion]:
    """Each plan's latest version as a draft, with ``changes`` to its parameters."""
    versions = []
    for plan in plans:
        latest = plan.versions.order_by("-effective_from").first()
        versions.append(whatif.DraftVersion(plan, D(2026, 6, 1), {**latest.parameters, **changes}))
    return versions


def by_key(lines) -> dict:
    totals: dict = defaultdict(Decimal)
    for line in lines:
        totals[(line.person_id, line.period, line.key)] += line.amount
    return {k: v for k, v in totals.items() if v}


def fingerprint() -> dict:
    tables = [m._meta.db_table for m in (LedgerLine, Statement, Attainment, CompRun, PlanVersion)]
    with connection.cursor() as cursor:
        out = {}
        for table in tables:
            cursor.execute(f'SELECT count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM "{table}" t')  # noqa: S608
            out[table] = cursor.fetchone()
    return out


# --- The replay ---------------------------------------------------------------------------------


def test_an_unchanged_draft_reproduces_the_ledger_per_person_month_and_key(company):
    plans = company["plans"]
    result = whatif.replay(versions=draft_of(*plans.values()), months=WINDOW)

    assert result.people == {company["avery"].pk, company["eve"].pk, company["cass"].pk}
    assert result.months_not_run == []
    assert by_key(result.draft) == by_key(result.actual)
    # Every kind of money is in the comparison: land shares, draw and recovery, expansion,
    # the CS bonus and finance's $50.00 adjustment.
    kinds = {line.kind for line in result.actual}
    assert {LineKind.COMMISSION, LineKind.DRAW, LineKind.DRAW_RECOVERY, LineKind.BONUS, LineKind.ADJUSTMENT} <= kinds
    summary = whatif.summarize(result)
    assert summary["totals"]["difference"] == "0.00"
    assert all(row["difference"] == "0.00" for row in summary["person_months"])
    assert [b["people"] for b in summary["distribution"] if b["bucket"] == "same"] == [3]
    # Avery: $12,000.00 (Jan) + $12,000.00 (Apr, day 90) + 4 × $3,000 draws − recoveries
    # ($3,000 Jan; none Feb, Mar; $9,000 Apr) + $50.00 adjustment = $24,050.00.
    avery = next(row for row in summary["people"] if row["person_id"] == company["avery"].pk)
    assert (avery["actual"], avery["draft"]) == ("24050.00", "24050.00")


def test_a_12_percent_expand_rate_makes_each_expand_line_exactly_1_2_times(company):
    eve, expansion = company["eve"], company["expansion"]
    result = whatif.replay(versions=draft_of(company["plans"]["expand"], rate="0.12"), months=WINDOW)

    assert result.people == {eve.pk}  # nobody else is on the Expand plan
    actual = {k: v for k, v in by_key(result.actual).items() if k[2].startswith("expand:")}
    draft = {k: v for k, v in by_key(result.draft).items() if k[2].startswith("expand:")}
    assert draft.keys() == actual.keys()
    assert all(draft[k] == actual[k] * Decimal("1.2") for k in actual)
    # January: $36.50 × 31 = $1,131.50 at 10%, $1,357.80 at 12%; February $1,022.00 → $1,226.40.
    assert actual[(eve.pk, JAN, f"expand:{expansion.pk}:2026-01-01")] == Decimal("1131.50")
    assert draft[(eve.pk, JAN, f"expand:{expansion.pk}:2026-01-01")] == Decimal("1357.80")
    assert draft[(eve.pk, FEB, f"expand:{expansion.pk}:2026-02-01")] == Decimal("1226.40")
    summary = whatif.summarize(result)
    # Jan–Apr: 31 + 28 + 31 + 30 = 120 days × $36.50 = $4,380.00; at 12% $5,256.00 (+20.0%).
    assert summary["totals"] == {"actual": "4380.00", "draft": "5256.00", "difference": "876.00", "pct": "0.2000"}
    assert [b["bucket"] for b in summary["distribution"] if b["people"]] == ["up_10"]
    assert summary["unattributed"]["difference"] == "876.00"  # expansion lines name no single account


def test_a_land_draft_changes_the_gated_share_and_the_draw_recovery_that_reads_it(company):
    avery = company["avery"]
    # A 35% floor at day 90: Acme's 30.42% no longer clears it, so April's $12,000.00 is held,
    # and April recovers nothing of the draws (its only earning was that share).
    stricter = {
        **LAND,
        "schedule": [{"at_day": 0, "share": "0.5"}, {"at_day": 90, "share": "0.5", "burn_floor": "0.35"}],
    }
    versions = [whatif.DraftVersion(company["plans"]["land"], D(2026, 6, 1), stricter)]
    summary = whatif.summarize(whatif.replay(versions=versions, months=WINDOW))

    row = next(r for r in summary["people"] if r["person_id"] == avery.pk)
    # −$12,000.00 commission, +$9,000.00 of recovery not taken: −$3,000.00.
    assert (row["actual"], row["draft"], row["difference"]) == ("24050.00", "21050.00", "-3000.00")
    kinds = {r["kind"]: r["difference"] for r in summary["by_kind"]}
    assert (kinds[LineKind.COMMISSION], kinds[LineKind.DRAW_RECOVERY]) == ("-12000.00", "9000.00")
    assert summary["accounts"][0]["external_id"] == "acme"
    assert summary["accounts"][0]["difference"] == "-12000.00"


def test_a_replay_and_a_whatif_job_write_nothing_to_the_ledger_statements_attainments_or_runs(company, make_user):
    before = fingerprint()
    draft = whatif.draft_create(
        title="Expand at 12%",
        document=yaml.safe_dump({"plans": [_entry(company["plans"]["expand"], rate="0.12")]}),
        based_on=company["plans"]["expand"],
        user=company["finance"],
    )
    run = whatif.whatif_run_create(draft=draft, months=4, user=company["finance"], today=TODAY)
    run_whatif.apply(args=[run.pk])
    assert fingerprint() == before


# --- Drafts -------------------------------------------------------------------------------------


def _entry(plan, **changes) -> dict:
    entry = plan_document(plan)["plans"][-1]
    entry.update(changes, type=str(plan.type), effective_from="2026-06-01")
    return entry


def test_a_new_draft_is_prefilled_from_the_plan_and_starts_after_the_months_computed(company):
    expand = company["plans"]["expand"]
    text = whatif.draft_document(expand, today=TODAY)
    document = yaml.safe_load(text)
    assert "assignments" not in document
    # Ledger lines under Expand go to April 2026; today is in May: it would start on June 1.
    assert document["plans"] == [
        {
            "name": expand.name,
            "type": "expand",
            "effective_from": D(2026, 6, 1),
            "rate": "0.10",  # as stored (an import would have stored "0.1")
            "tiers": [],
            "credit_split_months": 12,
        }
    ]
    report, versions = whatif.draft_check(text)
    assert report.ok and [v.plan for v in versions] == [expand]


def test_draft_problems_are_reported_by_line_and_path_and_nothing_is_saved(company):
    expand = company["plans"]["expand"]
    document = (
        "plans:\n"
        f"  - name: {expand.name}\n"  # line 2
        "    type: expand\n"
        "    effective_from: 2026-06-01\n"
        "    rate: 0.12\n"  # line 5: a number, not a string
        "  - name: Nobody's plan\n"  # line 6
        "    type: draw\n"
        "    effective_from: 2026-06-01\n"
        '    monthly_amount: "100"\n'
        "    months: 2\n"
        "    recoverable: true\n"
        "assignments:\n"
        "  - {email: eve@example.test, plan: x, start: 2026-01-01}\n"
    )
    with pytest.raises(PlansRejected) as refused:
        whatif.draft_create(title="t", document=document, based_on=None, user=company["finance"])
    problems = [(e["line"], e["path"], e["reason"][:30]) for e in refused.value.report.errors]
    assert problems == [
        (5, "plans[0].rate", 'write decimals as strings ("0.'),
        (6, "plans[1].name", '"Nobody\'s plan" — no stored pl'),
        (13, "assignments", "a draft holds plan versions on"),  # the list, on the line after the key
    ]
    assert not PlanDraft.objects.exists()


def test_a_plan_drafted_twice_is_refused(company):
    expand = company["plans"]["expand"]
    document = yaml.safe_dump({"plans": [_entry(expand), _entry(expand, effective_from="2026-07-01")]})
    report, versions = whatif.draft_check(document)
    assert versions == []
    assert [e["path"] for e in report.errors] == ["plans[1].name"]
    assert "one version per plan" in report.errors[0]["reason"]


# --- Publishing -----------------------------------------------------------------------------------


def test_publishing_a_draft_makes_the_plans_next_version(company):
    expand = company["plans"]["expand"]
    draft = whatif.draft_create(
        title="12%",
        document=yaml.safe_dump({"plans": [_entry(expand, rate="0.12")]}),
        based_on=expand,
        user=company["finance"],
    )
    versions = whatif.draft_publish(draft=draft, token=whatif.draft_token(draft), user=company["finance"])
    assert [(v.plan, v.version, v.effective_from, v.parameters["rate"]) for v in versions] == [
        (expand, 2, D(2026, 6, 1), "0.12")
    ]
    draft.refresh_from_db()
    assert draft.published_at is not None and draft.published_by == company["finance"]


def test_a_refused_publish_says_why_and_writes_nothing(company):
    expand = company["plans"]["expand"]
    # March 2026 has ledger lines under Expand: the importer refuses a version starting then.
    entry = _entry(expand, rate="0.12")
    entry["effective_from"] = "2026-03-01"
    draft = whatif.draft_create(
        title="Backdated", document=yaml.safe_dump({"plans": [entry]}), based_on=expand, user=company["finance"]
    )
    before = fingerprint()
    with pytest.raises(PlansRejected) as refused:
        whatif.draft_publish(draft=draft, token=whatif.draft_token(draft), user=company["finance"])
    assert refused.value.report.errors[0]["reason"].startswith("2026-03-01 falls in months already computed")
    # A stale page (the draft edited since) is refused before anything is read.
    with pytest.raises(whatif.ApplicationError, match="changed since"):
        whatif.draft_publish(draft=draft, token="20000101000000000000", user=company["finance"])
    assert fingerprint() == before
    draft.refresh_from_db()
    assert draft.published_at is None


# --- The job ---------------------------------------------------------------------------------------


def test_the_job_runs_through_the_celery_task_once_and_stores_the_result(company):
    draft = whatif.draft_create(
        title="Expand at 12%",
        document=yaml.safe_dump({"plans": [_entry(company["plans"]["expand"], rate="0.12")]}),
        based_on=None,
        user=company["finance"],
    )
    run = whatif.whatif_run_create(draft=draft, months=4, user=company["finance"], today=TODAY)
    assert (run.status, run.first_month, run.last_month) == (WhatIfRun.Status.QUEUED, JAN, APR)

    assert run_whatif.apply(args=[run.pk]).get() == WhatIfRun.Status.SUCCEEDED
    run.refresh_from_db()
    assert run.months_done == 4 and run.finished_at is not None
    assert run.result["totals"]["difference"] == "876.00"
    assert run.result["months"] == ["2026-01", "2026-02", "2026-03", "2026-04"]
    # A second delivery of the task finds it claimed and does nothing.
    assert run_whatif.apply(args=[run.pk]).get() is None


def test_a_failed_job_keeps_its_reason(company):
    draft = whatif.draft_create(
        title="x",
        document=yaml.safe_dump({"plans": [_entry(company["plans"]["expand"])]}),
        based_on=None,
        user=company["finance"],
    )
    run = whatif.whatif_run_create(draft=draft, months=4, user=company["finance"], today=TODAY)
    WhatIfRun.objects.filter(pk=run.pk).update(document="plans: [{name: x}]")
    run_whatif.apply(args=[run.pk])
    run.refresh_from_db()
    assert run.status == WhatIfRun.Status.FAILED
    assert run.error.startswith("The draft no longer reads as a plan document: plans[0].type")


def test_a_window_is_1_to_24_complete_months(db):
    assert whatif.window(3, today=D(2026, 5, 1)) == [D(2026, 2, 1), D(2026, 3, 1), D(2026, 4, 1)]
    for months in (0, 25):
        with pytest.raises(whatif.ApplicationError, match="1 to 24 months"):
            whatif.window(months, today=TODAY)


# --- Pages ------------------------------------------------------------------------------------------


@pytest.fixture
def finance_client(client, company, with_totp):
    with_totp(company["finance"])
    client.force_login(company["finance"])
    return client


def test_finance_drafts_runs_and_reads_a_whatif_in_pages(
    finance_client, company, django_assert_max_num_queries, django_capture_on_commit_callbacks
):
    expand = company["plans"]["expand"]
    page = finance_client.get(reverse("comp:plans"))
    assert reverse("comp:whatif") in page.content.decode()
    page = finance_client.get(reverse("comp:plan_detail", args=[expand.pk]))
    assert "Try a change (what-if)" in page.content.decode()

    new = finance_client.get(reverse("comp:whatif_new"), {"plan": expand.pk})
    assert new.status_code == 200
    document = new.context["form"].initial["document"].replace("rate: '0.10'", "rate: '0.12'")
    assert "rate: '0.12'" in document
    created = finance_client.post(
        reverse("comp:whatif_new"), {"plan": expand.pk, "title": "Expand at 12%", "document": document}
    )
    draft = PlanDraft.objects.get()
    assert created.status_code == 302 and created["Location"] == reverse("comp:whatif_draft", args=[draft.pk])
    assert draft.based_on == expand

    with django_capture_on_commit_callbacks() as callbacks:
        queued = finance_client.post(reverse("comp:whatif_run_new", args=[draft.pk]), {"months": "4"})
    run = WhatIfRun.objects.get()
    assert queued["Location"] == reverse("comp:whatif_run", args=[run.pk]) and len(callbacks) == 1
    waiting = finance_client.get(reverse("comp:whatif_run", args=[run.pk]), headers={"HX-Request": "true"})
    assert 'hx-trigger="every 2s"' in waiting.content.decode() and "Waiting for a worker" in waiting.content.decode()

    # The window ends with last month (as the clock says): run it as the worker would.
    WhatIfRun.objects.filter(pk=run.pk).update(first_month=JAN, last_month=APR)
    run_whatif.apply(args=[run.pk])
    done = finance_client.get(reverse("comp:whatif_run", args=[run.pk]), headers={"HX-Request": "true"})
    assert done["HX-Redirect"] == reverse("comp:whatif_run", args=[run.pk])
    with django_assert_max_num_queries(8):
        result = finance_client.get(reverse("comp:whatif_run", args=[run.pk]), {"person": company["eve"].pk})
    text = result.content.decode()
    assert "$4,380.00" in text and "$5,256.00" in text and "$876.00" in text and "+20.0%" in text
    assert "Eve Expand" in text and "2026-01" in text and "None" not in text
    for sort in ("name", "pct", "actual", "draft", "nonsense"):
        assert finance_client.get(reverse("comp:whatif_run", args=[run.pk]), {"sort": sort}).status_code == 200

    with django_assert_max_num_queries(8):
        finance_client.get(reverse("comp:whatif_draft", args=[draft.pk]))
    with django_assert_max_num_queries(8):
        listing = finance_client.get(reverse("comp:whatif"))
    assert "Expand at 12%" in listing.content.decode() and "Succeeded" in listing.content.decode()


def test_the_draft_page_shows_problems_by_line_and_keeps_the_draft(finance_client, company):
    expand = company["plans"]["expand"]
    draft = whatif.draft_create(
        title="ok", document=yaml.safe_dump({"plans": [_entry(expand)]}), based_on=expand, user=company["finance"]
    )
    answer = finance_client.post(
        reverse("comp:whatif_draft", args=[draft.pk]),
        {"title": "broken", "document": f"plans:\n  - name: {expand.name}\n    type: expand\n    rate: 0.12\n"},
    )
    text = answer.content.decode()
    assert answer.status_code == 200 and "The draft was not saved" in text
    assert "plans[0].rate" in text and "plans[0].effective_from" in text
    draft.refresh_from_db()
    assert draft.title == "ok"
    months = finance_client.post(reverse("comp:whatif_run_new", args=[draft.pk]), {"months": "25"})
    assert months.status_code == 200 and "less than or equal to 24" in months.content.decode()
    assert not WhatIfRun.objects.exists()


def test_publishing_from_the_page_leads_to_the_plan_and_a_refusal_lists_the_reason(finance_client, company):
    expand = company["plans"]["expand"]
    draft = whatif.draft_create(
        title="12%",
        document=yaml.safe_dump({"plans": [_entry(expand, rate="0.12")]}),
        based_on=expand,
        user=company["finance"],
    )
    stale = finance_client.post(reverse("comp:whatif_publish", args=[draft.pk]), {"token": "1"}, follow=True)
    assert "changed since this page was opened" in stale.content.decode()
    published = finance_client.post(
        reverse("comp:whatif_publish", args=[draft.pk]), {"token": whatif.draft_token(draft)}
    )
    assert published["Location"] == reverse("comp:plan_detail", args=[expand.pk])
    assert expand.versions.count() == 2
    again = finance_client.post(
        reverse("comp:whatif_publish", args=[draft.pk]), {"token": whatif.draft_token(draft)}, follow=True
    )
    assert "Nothing was published" in again.content.decode()


def test_only_finance_and_admins_reach_the_whatif_pages(client, company, make_user):
    draft = whatif.draft_create(
        title="x",
        document=yaml.safe_dump({"plans": [_entry(company["plans"]["expand"])]}),
        based_on=None,
        user=company["finance"],
    )
    for role in (Role.AE, Role.CSM, Role.LEADER, Role.PRODUCT):
        client.force_login(make_user(role))
        assert client.get(reverse("comp:whatif")).status_code == 403
        assert client.get(reverse("comp:whatif_draft", args=[draft.pk])).status_code == 403
        assert client.post(reverse("comp:whatif_run_new", args=[draft.pk]), {"months": "4"}).status_code == 403
    assert not WhatIfRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_reading_expansion_windows_ahead_on_other_connections_gives_the_same_replay(company):
    """Outside a transaction the replay reads the next months' windows on other connections
    (committed data, which a test transaction would hide from them); inside one it does not.
    Both give the same lines."""
    from django.db import transaction

    versions = draft_of(company["plans"]["expand"], rate="0.12")
    ahead = whatif.replay(versions=versions, months=WINDOW)
    with transaction.atomic():
        inline = whatif.replay(versions=versions, months=WINDOW)
    assert by_key(ahead.draft) == by_key(inline.draft)
    assert sum(line.amount for line in ahead.draft) == Decimal("5256.00")
