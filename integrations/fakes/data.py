"""Deterministic CRM data for the fakes: accounts with a hierarchy, owners, teams, won deals."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

from integrations.fakes.hubspot import FakeHubSpot
from integrations.fakes.salesforce import FakeSalesforce

SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
INDUSTRIES = ("Software", "Retail", "Finance", "Healthcare", "Media", "Logistics")
COUNTRIES = ("United States", "Germany", "France", "Japan", "Brazil", "India")


def populate_salesforce(
    fake: FakeSalesforce,
    *,
    emails: Sequence[str],
    accounts: int,
    opportunities: int,
    seed: int = 17,
    today: dt.date | None = None,
    csm_emails: Sequence[str] = (),
) -> dict[str, list[str]]:
    """Users for ``emails``, ``accounts`` accounts (a third of them divisions of a parent,
    some two levels deep), an owner each, a CSM on the team of every other one, and
    ``opportunities`` closed-won deals spread over the accounts. Returns the ids made."""
    rng = random.Random(seed)  # noqa: S311
    today = today or dt.date(2026, 6, 1)
    users = [fake.add("User", Email=email, Name=email.split("@")[0].title(), IsActive=True)["Id"] for email in emails]
    csms = [
        fake.add("User", Email=email, Name=email.split("@")[0].title(), IsActive=True)["Id"] for email in csm_emails
    ]
    ids: list[str] = []
    for i in range(accounts):
        parent = None
        if ids and i % 3 == 2:
            parent = ids[rng.randrange(max(1, len(ids) - 50), len(ids))]
        record = fake.add(
            "Account",
            Name=f"Account {i + 1:05d}",
            ParentId=parent,
            OwnerId=users[i % len(users)],
            Segment__c=SEGMENTS[i % 3],
            Industry=INDUSTRIES[i % len(INDUSTRIES)],
            BillingCountry=COUNTRIES[i % len(COUNTRIES)],
        )
        ids.append(record["Id"])
        if csms and i % 2 == 0:
            fake.add(
                "AccountTeamMember",
                AccountId=record["Id"],
                UserId=csms[i % len(csms)],
                TeamMemberRole="Customer Success Manager",
            )
    deals = []
    for i in range(opportunities):
        close = today - dt.timedelta(days=rng.randrange(30, 700))
        amount = rng.randrange(20, 500) * 1000 + rng.choice((0, 50, 99))
        deal = fake.add(
            "Opportunity",
            AccountId=ids[i % len(ids)],
            Name=f"Deal {i + 1:05d}",
            Amount=amount,
            CloseDate=close.isoformat(),
            StageName="Closed Won",
            IsWon=True,
            IsClosed=True,
            Term_Months__c=rng.choice((12, 12, 24, 36)),
            Ramp_Days__c=rng.choice((60, 90, 120)),
        )
        deals.append(deal["Id"])
    return {"users": users, "csms": csms, "accounts": ids, "deals": deals}


def populate_hubspot(
    fake: FakeHubSpot,
    *,
    emails: Sequence[str],
    companies: int,
    deals: int,
    seed: int = 17,
    today: dt.date | None = None,
    csm_emails: Sequence[str] = (),
) -> dict[str, list[str]]:
    """The HubSpot twin of ``populate_salesforce``: owners, companies with parents (the
    ``hs_parent_company_id`` of a child), a CSM owner property on every other company, and
    closed-won deals associated with their company."""
    rng = random.Random(seed)  # noqa: S311
    today = today or dt.date(2026, 6, 1)
    owners = [fake.add_owner(email, first=email.split("@")[0].title()) for email in emails]
    csms = [fake.add_owner(email, first=email.split("@")[0].title()) for email in csm_emails]
    ids: list[str] = []
    for i in range(companies):
        parent = ids[rng.randrange(max(0, len(ids) - 50), len(ids))] if ids and i % 3 == 2 else None
        properties = {
            "name": f"Company {i + 1:05d}",
            "hs_parent_company_id": parent,
            "hubspot_owner_id": owners[i % len(owners)],
            "revops_segment": SEGMENTS[i % 3],
            "industry": INDUSTRIES[i % len(INDUSTRIES)],
            "country": COUNTRIES[i % len(COUNTRIES)],
        }
        if csms and i % 2 == 0:
            properties["revops_csm_owner_id"] = csms[i % len(csms)]
        ids.append(fake.add("companies", **properties))
    made = []
    for i in range(deals):
        close = today - dt.timedelta(days=rng.randrange(30, 700))
        made.append(
            fake.add(
                "deals",
                company=ids[i % len(ids)],
                dealname=f"Deal {i + 1:05d}",
                amount=str(rng.randrange(20, 500) * 1000),
                closedate=f"{close.isoformat()}T00:00:00.000Z",
                dealstage="closedwon",
                pipeline="default",
                revops_term_months=str(rng.choice((12, 24, 36))),
                revops_ramp_days=str(rng.choice((60, 90, 120))),
            )
        )
    return {"owners": owners, "csms": csms, "companies": ids, "deals": made}
