"""The demo's comp: plans sized to the demo company, monthly runs and finance's approvals.

The plans are those of ``docs/examples/plans.yaml`` (one of each type), for the demo
year (the calendar year of ``as_of``), with what depends on the company filled in from the
database: every seller with a book on the plan for their role with a quota for a typical
demo book, new hires ramped and on the bridge draw, and the pilot on mid-market accounts. The
document goes through ``comp.plans.plans_import`` like any file finance uploads.

Each closed month of the demo year is then run and approved the way the monthly close
would have done it: the run on the 1st of the month after, finance's approval on the
5th. Django's clock is set to those moments for the run and the approval (``_clock``), so
approval times and ledger timestamps read like that close; the services themselves are
the ones the pages call. The current month is run through yesterday and left open.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import yaml
from django.db.models import Min, Q

from accounts.models import Account, AccountStatus, OwnerRole, Ownership, Segment
from comp.engine import run_comp
from comp.periods import add_months
from comp.plans import plans_import
from comp.selectors import statements_list
from comp.services import statement_approve
from revops.models import User

# Quota per quarter. Land: committed ARR of new logos; expand: net-new ARR from consumption.
# About what a typical demo book brings in a good quarter: some quarters end above it (the
# accelerators show), most below, and a year's pay is tens to low hundreds of thousands.
LAND_QUOTA = 650_000
EXPAND_QUOTA = 300_000
# A seller with both a land and an expand book (the documented AE) carries part of each quota.
HYBRID_SHARE = 0.6
CS_TARGET_BONUS = "3000"  # per quarter, on the NRR of the CSM's book
PILOT_SIZE = 18  # mid-market accounts, as the domain's pilots (15–20)
PILOT_TENURE_DAYS = 180
PILOT_MONTHS = 6
DRAW_MONTHS = 6
APPROVAL_DAY = 5  # finance approves the month's statements on the 5th of the month after
FINANCE = "finance@example.com"


def plan_year(as_of: dt.date) -> tuple[dt.date, dt.date]:
    return dt.date(as_of.year, 1, 1), dt.date(as_of.year, 12, 31)


def _names(year: int) -> dict[str, str]:
    fy = f"FY{year % 100:02d}"
    return {
        "land": f"Land {fy}",
        "expand": f"Expand {fy}",
        "spiff": f"Usage SPIFFs {fy}",
        "cs": f"CS NRR {fy}",
        "pilot": f"Mid-market expansion pilot H1 {fy}",
        "draw": "New logo draw",
    }


def _plans(first: dt.date, pilot_accounts: list[str]) -> list[dict]:
    names = _names(first.year)
    land = {
        "name": names["land"],
        "type": "land",
        "effective_from": first.isoformat(),
        "base_rate": "0.10",
        "accelerators": [{"above_attainment": "1.00", "multiplier": "1.5"}],
        "schedule": [{"at_day": 0, "share": "0.5"}, {"at_day": 90, "share": "0.5", "burn_floor": "0.25"}],
        "recheck": "monthly",
        "clawback": {"at_day": 365, "burn_floor": "0.40", "mode": "hard"},
    }
    # From July: quota credited on the consumption estimate at signing, the rest at days 60 and 90.
    land_h2 = {k: v for k, v in land.items() if k != "recheck"} | {
        "effective_from": first.replace(month=7).isoformat(),
        "clawback": {"at_day": 365, "burn_floor": "0.40", "mode": "soft"},
        "quota_credit": {
            "basis": "estimate",
            "milestones": [{"at_day": 60, "share": "0.5"}, {"at_day": 90, "share": "0.5"}],
        },
    }
    plans = [
        land,
        land_h2,
        {
            "name": names["expand"],
            "type": "expand",
            "effective_from": first.isoformat(),
            "rate": "0.11",
            "tiers": [
                {"above_attainment": "1.00", "multiplier": "1.5"},
                {"above_attainment": "1.25", "multiplier": "2"},
                {"above_attainment": "1.50", "multiplier": "3"},
            ],
            # Land AEs are paid on the commit (the land plan); consumption growth is the expand
            # AE's (or the CSM's) from day one. With the default 12 months, a seller on both
            # plans (the documented AE) would also be paid for each new logo's ramp to its commit.
            "credit_split_months": 0,
        },
        {
            "name": names["spiff"],
            "type": "spiff",
            "effective_from": first.isoformat(),
            "new_workload": "2000",
            "new_region": "1000",
            "new_sku_rate": "0.05",
            "recommit_rate": "0.01",
        },
        {
            "name": names["cs"],
            "type": "cs",
            "effective_from": first.isoformat(),
            "target_bonus": CS_TARGET_BONUS,
            "curve": [
                {"nrr": "0.90", "payout": "0"},
                {"nrr": "1.00", "payout": "1.0"},
                {"nrr": "1.20", "payout": "1.5"},
            ],
        },
        {
            "name": names["draw"],
            "type": "draw",
            "effective_from": first.isoformat(),
            "monthly_amount": "3000",
            "months": DRAW_MONTHS,
            "recoverable": True,
        },
    ]
    if pilot_accounts:
        plans.append(
            {
                "name": names["pilot"],
                "type": "pilot",
                "effective_from": first.isoformat(),
                "rate": "0.06",
                "accounts": pilot_accounts,
                "window": {"start": first.isoformat(), "end": _pilot_end(first).isoformat()},
                "comparison": "segment",
            }
        )
    return plans


def _pilot_end(first: dt.date) -> dt.date:
    return add_months(first, PILOT_MONTHS) - dt.timedelta(days=1)


def _holders(role: str, first: dt.date, last: dt.date) -> list[User]:
    """People who own accounts in ``role`` at some point of [first, last], by email."""
    owners = Ownership.objects.filter(role=role, start_on__lte=last).filter(
        Q(end_on__isnull=True) | Q(end_on__gte=first)
    )
    return list(User.objects.filter(pk__in=owners.values("person_id")).order_by("email"))


def pilot_accounts(*, first: dt.date, expand_aes: list[User]) -> tuple[User | None, list[str]]:
    """The pilot's accounts and AE. Accounts: up to PILOT_SIZE active mid-market customers
    entering their expansion phase, past onboarding (signed at least PILOT_TENURE_DAYS before
    the window, so there is a "before" to compare with), the youngest first. AE: the expand AE
    with the most of them in their book."""
    end = _pilot_end(first)
    signed = dict(
        Account.objects.filter(segment=Segment.MID_MARKET, status=AccountStatus.ACTIVE)
        .values_list("external_id")
        .annotate(first_signed=Min("contracts__signed_on"))
        .filter(first_signed__lte=end)
        .order_by()
    )
    tenured = first - dt.timedelta(days=PILOT_TENURE_DAYS)
    # A small demo may have too few tenured ones: then the youngest of the rest come next.
    ranked = sorted(signed, key=lambda ext: (signed[ext] <= tenured, signed[ext], ext), reverse=True)
    accounts = ranked[:PILOT_SIZE]
    if not accounts or not expand_aes:
        return None, []
    books = Counter(
        Ownership.objects.filter(
            role=OwnerRole.EXPAND_AE, account__external_id__in=accounts, start_on__lte=end
        ).values_list("person_id", flat=True)
    )
    return min(expand_aes, key=lambda p: (-books[p.pk], p.email)), accounts


def comp_document(as_of: dt.date) -> dict:
    """The demo's plan document for ``as_of``'s year (plans and assignments)."""
    first, last = plan_year(as_of)
    names = _names(first.year)
    land_aes = _holders("land_ae", first, last)
    expand_aes = _holders("expand_ae", first, last)
    csms = _holders("csm", first, last)
    pilot_ae, accounts = pilot_accounts(first=first, expand_aes=expand_aes)
    both = {p.pk for p in land_aes} & {p.pk for p in expand_aes}

    def start(person) -> dt.date:
        return max(first, person.started_on) if person.started_on else first

    def quota(amount: int, person) -> str:
        return str(round(amount * HYBRID_SHARE) if person.pk in both else amount)

    assignments: list[dict] = []
    for person in land_aes:
        assignments.append(
            {
                "email": person.email,
                "plan": names["land"],
                "start": start(person).isoformat(),
                "end": last.isoformat(),
                "quota": quota(LAND_QUOTA, person),
                "quota_period": "quarter",
            }
        )
        if person.started_on and person.started_on > first - dt.timedelta(days=365):
            # A new hire: ramp relief by default, and the bridge draw for their first months.
            end = min(last, add_months(start(person), DRAW_MONTHS) - dt.timedelta(days=1))
            assignments.append(
                {
                    "email": person.email,
                    "plan": names["draw"],
                    "start": start(person).isoformat(),
                    "end": end.isoformat(),
                }
            )
    for person in expand_aes:
        assignments.append(
            {
                "email": person.email,
                "plan": names["expand"],
                "start": start(person).isoformat(),
                "end": last.isoformat(),
                "quota": quota(EXPAND_QUOTA, person),
                "quota_period": "quarter",
            }
        )
    for person in sorted({p.pk: p for p in land_aes + expand_aes}.values(), key=lambda p: p.email):
        assignments.append(
            {"email": person.email, "plan": names["spiff"], "start": start(person).isoformat(), "end": last.isoformat()}
        )
    if accounts:
        assignments.append(
            {
                "email": pilot_ae.email,
                "plan": names["pilot"],
                "start": first.isoformat(),
                "end": _pilot_end(first).isoformat(),
            }
        )
    for person in csms:
        assignments.append(
            {
                "email": person.email,
                "plan": names["cs"],
                "start": start(person).isoformat(),
                "end": last.isoformat(),
                "quota_period": "quarter",
            }
        )
    return {"plans": _plans(first, accounts), "assignments": assignments}


@contextmanager
def _clock(at: dt.datetime) -> Iterator[None]:
    """Django's clock (``timezone.now``, hence ``today_utc`` and auto timestamps) reads ``at``.
    Process-wide, which is safe here: the seed runs alone in its command or worker process."""
    with mock.patch("django.utils.timezone.now", return_value=at):
        yield


def _at(day: dt.date, hour: int) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.UTC)


def approval_day(period: dt.date, as_of: dt.date) -> dt.date:
    """When finance approved ``period``: the 5th of the month after, or yesterday if that is
    earlier, and never before the month after has begun."""
    after = add_months(period, 1)
    return max(after, min(after.replace(day=APPROVAL_DAY), as_of - dt.timedelta(days=1)))


def seed_comp(as_of: dt.date) -> list[dt.date]:
    """Import the demo plans, run every month of the demo year up to the current one (oldest
    first, each as of its month end; the current one through yesterday) and approve the
    closed months. Returns the months run."""
    document = comp_document(as_of)
    first, _ = plan_year(as_of)
    plans_import(data=yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode(), filename=_filename(first))
    finance = User.objects.get(email=FINANCE)
    current = as_of.replace(day=1)
    through = as_of - dt.timedelta(days=1)
    months = []
    month = first
    while month < current:
        close = add_months(month, 1)
        with _clock(_at(close, 6)):
            run_comp(period=month, through=through)
        with _clock(_at(approval_day(month, as_of), 15)):
            for row in statements_list(viewer=finance, period=month):
                if not row.approved:
                    statement_approve(person=row.person, period=month, approver=finance)
        months.append(month)
        month = close
    run_comp(period=current, through=through)
    months.append(current)
    return months


def _filename(first: dt.date) -> str:
    return f"demo-plans-{first.year}.yaml"
