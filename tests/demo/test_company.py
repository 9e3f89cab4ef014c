"""The generated demo company: shape, invariants, loading through the real path, determinism."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import itertools
from collections import Counter, defaultdict
from decimal import Decimal

import pytest
from allauth.mfa.models import Authenticator
from django.core.management import call_command
from django.db import transaction
from django.db.models import Count, Sum

from accounts.models import Account, Activity, Contract, Ownership
from demo.company import (
    RELEASES,
    account_events,
    load_company,
    plan_company,
    segment_counts,
    usage_csv_chunks,
)
from demo.data import DEMO_PASSWORD, DEMO_PEOPLE
from revops.models import Role, User
from usage.models import DailyRollup, FirstSeen, Meter, ProductRelease

AS_OF = dt.date(2026, 5, 1)
SMALL = {"seed": 7, "accounts": 30, "months": 4, "as_of": AS_OF}
SMALL_ARGS = ["--seed", "7", "--accounts", "30", "--months", "4", "--as-of", AS_OF.isoformat()]


def csv_bytes(plan) -> bytes:
    return b"".join(usage_csv_chunks(plan))


def expected_rollups(plan) -> dict[tuple[str, str], tuple[int, Decimal]]:
    """(account, meter) -> (events, total quantity), straight from the generated CSV."""
    totals: dict[tuple[str, str], list] = defaultdict(lambda: [0, Decimal(0)])
    for row in csv.DictReader(io.StringIO(csv_bytes(plan).decode())):
        entry = totals[(row["account"], row["meter"])]
        entry[0] += 1
        entry[1] += Decimal(row["quantity"])
    return {key: (n, qty) for key, (n, qty) in totals.items()}


def company_snapshot() -> dict:
    """Aggregates keyed by external ids (never database ids)."""
    return {
        "accounts": list(
            Account.objects.order_by("external_id").values_list(
                "external_id", "name", "parent__external_id", "segment", "region", "industry", "status"
            )
        ),
        "contracts": list(
            Contract.objects.order_by("external_id").values_list(
                "external_id",
                "account__external_id",
                "pricing_model",
                "signed_on",
                "start_on",
                "end_on",
                "committed_arr",
                "tcv",
                "included_units",
                "base_fee",
                "credits",
                "deal_desk_estimate",
                "ae_estimate",
                "amends__external_id",
            )
        ),
        "ownerships": list(
            Ownership.objects.order_by("account__external_id", "role", "start_on").values_list(
                "account__external_id", "person__email", "role", "start_on", "end_on"
            )
        ),
        "activities": Activity.objects.count(),
        "rollups": list(
            DailyRollup.objects.values_list("account__external_id", "meter__key")
            .annotate(days=Count("id"), quantity=Sum("quantity"), revenue=Sum("revenue"), events=Sum("event_count"))
            .order_by("account__external_id", "meter__key")
        ),
        "first_seen": sorted(FirstSeen.objects.values_list("account__external_id", "kind", "value", "first_day")),
    }


# --- Pure generation (no database) ------------------------------------------------------


def test_segment_counts_are_exact():
    assert segment_counts(400) == {"enterprise": 60, "mid-market": 140, "smb": 200}
    assert segment_counts(30) == {"enterprise": 5, "mid-market": 11, "smb": 14}
    plan = plan_company(**SMALL)
    assert Counter(a.segment for a in plan.accounts) == segment_counts(30)


def test_same_seed_gives_the_same_plan_and_usage_bytes_and_another_seed_does_not():
    first, second = plan_company(**SMALL), plan_company(**SMALL)
    assert first.accounts == second.accounts
    assert first.contracts == second.contracts
    assert first.ownerships == second.ownerships
    assert first.activities == second.activities
    assert hashlib.sha256(csv_bytes(first)).digest() == hashlib.sha256(csv_bytes(second)).digest()

    other = plan_company(**{**SMALL, "seed": 8})
    assert csv_bytes(other) != csv_bytes(first)


def test_full_size_company_has_the_documented_shape():
    plan = plan_company(seed=42, accounts=400, months=18, as_of=AS_OF)

    assert Counter(a.segment for a in plan.accounts) == {"enterprise": 60, "mid-market": 140, "smb": 200}
    children = Counter(a.parent for a in plan.accounts if a.parent)
    assert len(children) == 20 and all(2 <= n <= 4 for n in children.values())
    assert {a.segment for a in plan.accounts if a.external_id in children} == {"enterprise"}
    statuses = Counter(a.status for a in plan.accounts)
    assert statuses["churned"] > 0 and statuses["prospect"] > 0 and statuses["active"] > 300
    assert {a.archetype for a in plan.accounts} >= {"healthy", "expand", "stall", "decline", "churn", "late_start"}
    assert {c.pricing_model for c in plan.contracts} == {"commit", "hybrid", "credits", "minimum"}
    assert any(c.amends for c in plan.contracts)
    # Ownership changes over time: some account has two people in a role, one after the other.
    per_role = Counter((o.account, o.role) for o in plan.ownerships)
    assert any(n > 1 for (_, role), n in per_role.items() if role == "land_ae")
    assert any(n > 1 for (_, role), n in per_role.items() if role == "csm")
    assert {o.role for o in plan.ownerships} == {"land_ae", "expand_ae", "csm"}
    assert 300 <= len(plan.activities) <= 900
    assert len(plan.releases) == len(RELEASES) and all(r.adopters for r in plan.releases)
    # Not every account uses every meter, and every customer uses at least one.
    customers = [a for a in plan.accounts if a.land_on]
    assert all(a.meters for a in customers)
    assert any(len(a.meters) < 5 for a in customers) and any(len(a.meters) >= 4 for a in customers)


def current_books(plan) -> dict[str, dict[str, int]]:
    """Accounts per person and role on the last day of usage."""
    last = plan.as_of - dt.timedelta(days=1)
    books: dict[str, Counter] = defaultdict(Counter)
    for o in plan.ownerships:
        if o.start_on <= last and (o.end_on is None or last <= o.end_on):
            books[o.role][o.person] += 1
    return {role: dict(sorted(counts.items())) for role, counts in sorted(books.items())}


def test_full_size_books_are_sized_like_real_territories():
    plan = plan_company(seed=42, accounts=400, months=18, as_of=AS_OF)

    # Twelve land AEs with a few dozen accounts each (the new hire's from her start), five expand
    # AEs with 15–25 enterprise and mid-market accounts, five CSMs with 70-odd each; the documented
    # AE is a hybrid seller with a smaller land book and an expand book.
    assert current_books(plan) == {
        "csm": {
            "csm@example.com": 76,
            "jamie.rivera@example.com": 74,
            "leah.goldberg@example.com": 71,
            "quinn.novak@example.com": 78,
            "taylor.brooks@example.com": 73,
        },
        "expand_ae": {
            "ae@example.com": 21,
            "drew.okafor@example.com": 23,
            "nadia.haddad@example.com": 21,
            "owen.fischer@example.com": 20,
            "sam.patel@example.com": 21,
        },
        "land_ae": {
            "ae@example.com": 20,
            "blake.morgan@example.com": 26,
            "elena.rossi@example.com": 38,
            "femi.adeyemi@example.com": 32,
            "hana.sato@example.com": 38,
            "isabel.ortiz@example.com": 36,
            "jordan.kim@example.com": 42,
            "marcus.webb@example.com": 38,
            "priya.raman@example.com": 27,
            "ravi.menon@example.com": 32,
            "riley.chen@example.com": 31,
            "tomas.herrera@example.com": 27,
        },
    }
    last = AS_OF - dt.timedelta(days=1)
    mine = {o.account for o in plan.ownerships if o.person == "ae@example.com" and o.start_on <= last}
    assert len(mine) == 39
    # SMB accounts stay with their CSM after the first year; only the others get an expand AE.
    segment = {a.external_id: a.segment for a in plan.accounts}
    assert {segment[o.account] for o in plan.ownerships if o.role == "expand_ae"} == {"enterprise", "mid-market"}
    # Every seller is on a team the leader manages: Sales or Customer Success.
    assert {(p.role, p.team) for p in plan.people} == {("ae", "Sales"), ("csm", "Customer Success")}
    assert len(plan.people) == 19


@pytest.mark.parametrize("seed", range(1, 11))
def test_a_small_demo_still_gives_the_documented_ae_and_csm_a_book(seed):
    plan = plan_company(seed=seed, accounts=24, months=6, as_of=AS_OF)

    books = current_books(plan)
    assert books["land_ae"]["ae@example.com"] >= 3
    assert books["csm"]["csm@example.com"] >= 10
    # Staffed for its size: three land AEs, two expand AEs and two CSMs, not the full team.
    assert len(books["land_ae"]) == 3 and len(books["csm"]) == 2
    assert len(plan.people) == 5


def test_planned_contracts_are_prospects_about_to_sign_with_no_deal_desk_estimate_yet():
    plan = plan_company(seed=42, accounts=400, months=18, as_of=AS_OF)

    planned = [c for c in plan.contracts if c.start_on > AS_OF]
    assert [(c.external_id, c.pricing_model, c.committed_arr, c.signed_on, c.start_on) for c in planned] == [
        ("DEMO-0079-C1", "commit", Decimal(43000), dt.date(2026, 5, 7), dt.date(2026, 5, 15)),
        ("DEMO-0100-C1", "commit", Decimal(36000), dt.date(2026, 5, 7), dt.date(2026, 5, 18)),
        ("DEMO-0200-C1", "minimum", Decimal(189000), dt.date(2026, 5, 26), dt.date(2026, 6, 22)),
        ("DEMO-0322-C1", "commit", Decimal(7500), dt.date(2026, 5, 17), dt.date(2026, 6, 1)),
        ("DEMO-0323-C1", "hybrid", Decimal(14500), dt.date(2026, 5, 9), dt.date(2026, 6, 8)),
    ]
    status = {a.external_id: a.status for a in plan.accounts}
    assert all(status[c.account] == "prospect" and c.amends is None for c in planned)
    assert all(c.deal_desk_estimate is None and c.ae_estimate > 0 for c in planned)
    # The deal that got each one there is in the log.
    proposals = {x.account for x in plan.activities if "order form is out for signature" in x.notes}
    assert proposals == {c.account for c in planned}


def test_activity_notes_never_repeat_within_an_account_and_carry_its_details():
    plan = plan_company(seed=42, accounts=400, months=18, as_of=AS_OF)

    per_account = Counter((x.account, x.notes) for x in plan.activities)
    assert len(plan.activities) == 616 and max(per_account.values()) == 1
    assert len({x.notes for x in plan.activities}) == 592
    assert not any("{" in x.notes or "}" in x.notes for x in plan.activities)
    # The details are the account's own: its name, its contact, its commit.
    names = {a.external_id: a.name for a in plan.accounts}
    assert sum(names[x.account] in x.notes for x in plan.activities) > 100
    assert sum("$" in x.notes for x in plan.activities) > 100


def test_release_adopters_show_a_lift_after_the_release_that_others_do_not():
    plan = plan_company(seed=42, accounts=160, months=18, as_of=AS_OF)
    release = plan.releases[0]
    day = plan.index(release.released_on)
    adopters = set(release.adopters)
    ratios = {}
    for group in ("adopters", "others"):
        before = after = 0.0
        for a in plan.accounts:
            if (a.external_id in adopters) != (group == "adopters") or a.zero_at is not None:
                continue
            if not any(m.key == release.meter and m.start <= day - 28 for m in a.meters):
                continue
            for line in account_events(plan, a):
                fields = line.split(",")
                t = int(fields[0].rsplit("-", 1)[1].rstrip("b"))
                if fields[2] != release.meter:
                    continue
                if day - 28 <= t < day:
                    before += float(fields[4])
                elif day + 45 <= t < day + 73:
                    after += float(fields[4])
        ratios[group] = after / before
    assert ratios["adopters"] > ratios["others"] + 0.2


def test_events_are_valid_csv_with_at_most_six_decimals_and_one_or_two_events_a_day():
    plan = plan_company(**SMALL)
    per_day = Counter()
    for row in csv.DictReader(io.StringIO(csv_bytes(plan).decode())):
        quantity = Decimal(row["quantity"])
        assert quantity > 0 and -quantity.as_tuple().exponent <= 6
        assert row["time"].endswith("Z")
        assert plan.window_start <= dt.date.fromisoformat(row["time"][:10]) < AS_OF
        per_day[(row["account"], row["meter"], row["time"][:10])] += 1
        assert row["workload"] and row["region"]
    assert set(per_day.values()) == {1, 2}


# --- Loaded through the real path -----------------------------------------------------


@pytest.mark.django_db
def test_seed_demo_loads_the_company_with_exact_invariants():
    call_command("seed_demo", *SMALL_ARGS)
    plan = plan_company(**SMALL)

    counts = dict(Account.objects.values_list("segment").annotate(n=Count("id")))
    assert counts == segment_counts(30)
    # Every active account has a contract in force today; churned ones have none.
    for account in Account.objects.filter(status="active"):
        assert account.contracts.filter(start_on__lte=AS_OF, end_on__gte=AS_OF).exists(), account.external_id
    for account in Account.objects.filter(status="churned"):
        assert account.contracts.exists()
        assert not account.contracts.filter(end_on__gte=AS_OF).exists()
    # A prospect's only contract is a planned one: it starts after today, unestimated by the deal desk.
    planned = Contract.objects.filter(account__status="prospect")
    assert not planned.filter(start_on__lte=AS_OF).exists()
    assert not planned.filter(deal_desk_estimate__isnull=False).exists()
    # Ownership periods never overlap per account and role.
    periods = defaultdict(list)
    for o in Ownership.objects.order_by("start_on"):
        periods[(o.account_id, o.role)].append(o)
    for rows in periods.values():
        for earlier, later in itertools.pairwise(rows):
            assert earlier.end_on is not None and earlier.end_on < later.start_on
    # Every active customer has a land AE and a CSM on the last day of usage.
    yesterday = AS_OF - dt.timedelta(days=1)
    for account in Account.objects.filter(status="active").exclude(contracts=None):
        for role in ("land_ae", "csm"):
            assert (
                account.ownerships.filter(role=role, start_on__lte=yesterday).exclude(end_on__lt=yesterday).count() == 1
            )
    # Rollups exist for each generated account × meter, with the exact sums and counts.
    expected = expected_rollups(plan)
    actual = {
        (acc, meter): (events, qty)
        for acc, meter, events, qty in DailyRollup.objects.values_list("account__external_id", "meter__key")
        .annotate(events=Sum("event_count"), qty=Sum("quantity"))
        .values_list("account__external_id", "meter__key", "events", "qty")
    }
    assert actual == expected
    assert not DailyRollup.objects.filter(revenue__lte=0).exists()
    assert Meter.objects.filter(tiers__isnull=False).distinct().count() == 5
    assert Meter.objects.get(key="tokens-1k").tiers.count() == 3
    assert ProductRelease.objects.count() == len(RELEASES)
    assert all(r.meters.count() == 1 for r in ProductRelease.objects.all())
    assert FirstSeen.objects.filter(kind="workload").exists() and FirstSeen.objects.filter(kind="region").exists()


@pytest.mark.django_db
def test_people_cover_every_role_with_the_demo_password_and_only_finance_and_admin_have_totp():
    call_command("seed_demo", *SMALL_ARGS)

    # A 30-account company staffs three land AEs, two expand AEs and two CSMs (demo.company.BOOKS).
    assert User.objects.count() == len(DEMO_PEOPLE) + len(plan_company(**SMALL).people) == 6 + 5
    assert set(User.objects.values_list("role", flat=True)) == set(Role.values)
    assert User.objects.filter(role=Role.AE).count() == 5 and User.objects.filter(role=Role.CSM).count() == 2
    for user in User.objects.all():
        assert user.check_password(DEMO_PASSWORD), user.email
    with_totp = set(Authenticator.objects.filter(type=Authenticator.Type.TOTP).values_list("user__email", flat=True))
    assert with_totp == {"finance@example.com", "admin@example.com"}
    sales = User.objects.get(email="blake.morgan@example.com").team
    assert sales.name == "Sales" and sales.manager.email == "leader@example.com"
    assert User.objects.get(email="jamie.rivera@example.com").team.name == "Customer Success"


@pytest.mark.django_db
def test_same_seed_loads_identical_accounts_contracts_and_rollups():
    snapshots = []
    for _ in range(2):
        with transaction.atomic():
            call_command("seed_demo", *SMALL_ARGS)
            snapshots.append(company_snapshot())
            transaction.set_rollback(True)

    assert snapshots[0] == snapshots[1]
    assert snapshots[0]["rollups"] and snapshots[0]["contracts"]


@pytest.mark.django_db
def test_seed_demo_twice_duplicates_nothing():
    call_command("seed_demo", *SMALL_ARGS)
    before = company_snapshot()

    call_command("seed_demo", *SMALL_ARGS)

    assert company_snapshot() == before
    assert User.objects.count() == len(DEMO_PEOPLE) + len(plan_company(**SMALL).people)


@pytest.mark.django_db
def test_seed_demo_if_empty_does_nothing_on_a_database_with_a_company():
    call_command("seed_demo", *SMALL_ARGS)
    before = company_snapshot()

    call_command("seed_demo", "--if-empty", "--seed", "8", "--accounts", "40")

    assert company_snapshot() == before


@pytest.mark.django_db
def test_load_company_is_all_or_nothing(monkeypatch):
    import demo.company as demo_company

    def fail(*args, **kwargs):
        raise RuntimeError("fold failed")

    monkeypatch.setattr("usage.ingestion.rollups.fold_all_deltas", fail)
    with pytest.raises(RuntimeError):
        load_company(plan_company(**SMALL))

    assert not Account.objects.exists()
    assert not demo_company.company_exists()
