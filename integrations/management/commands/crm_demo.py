"""Start a local fake CRM with demo-shaped data and point a demo connection at it.

    .venv/bin/python manage.py crm_demo salesforce [--port 8765]
    .venv/bin/python manage.py crm_demo hubspot [--port 8766]

Salesforce mirrors the demo company (the accounts, hierarchy, people and owners already in
the database) with a few CRM-side edits — renamed accounts, an owner change, a new logo and
two closed-won deals — so a first read shows exactly what a sync changes; HubSpot holds 40
companies of its own. The connection appears on Data → Connections; the server runs until
Ctrl-C (the connection stays, pointing at the stopped server).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from accounts.models import Account, OwnerRole, Ownership
from integrations.crypto import encrypt_json
from integrations.fakes.data import populate_hubspot
from integrations.fakes.hubspot import FakeHubSpot
from integrations.fakes.salesforce import FakeSalesforce
from integrations.fakes.server import RunningFake
from integrations.models import Connection, Provider
from integrations.services import default_mapping
from revops.models import Role, User

TEAM_ROLES = {OwnerRole.CSM: "Customer Success Manager", OwnerRole.EXPAND_AE: "Account Manager"}
SEGMENT_NAMES = {"enterprise": "Enterprise", "mid-market": "Mid-Market", "smb": "SMB"}


def mirror_demo_company(fake: FakeSalesforce) -> int:
    """The database's accounts, people, owners and contracts as the fake org's records."""
    today = timezone.localdate()
    users = {}
    for person in User.objects.filter(is_active=True).order_by("pk"):
        users[person.pk] = fake.add("User", Email=person.email, Name=person.name, IsActive=True)["Id"]
    current = {
        (o.account_id, o.role): o.person_id
        for o in Ownership.objects.filter(start_on__lte=today).exclude(end_on__lt=today)
    }
    accounts = list(Account.objects.select_related("parent").order_by("pk"))
    for account in accounts:
        fake.add(
            "Account",
            Id=account.external_id,
            Name=account.name,
            ParentId=account.parent.external_id if account.parent_id else None,
            OwnerId=users.get(current.get((account.pk, OwnerRole.LAND_AE))),
            Segment__c=SEGMENT_NAMES[account.segment],
            Industry=account.industry or None,
            BillingCountry=account.region or None,
        )
        for role, crm_role in TEAM_ROLES.items():
            if (account.pk, role) in current and current[(account.pk, role)] in users:
                fake.add(
                    "AccountTeamMember",
                    AccountId=account.external_id,
                    UserId=users[current[(account.pk, role)]],
                    TeamMemberRole=crm_role,
                )
    # What happened in the CRM since the last export: a few renames, an owner change, a new logo.
    for account in accounts[:3]:
        fake.update("Account", account.external_id, Name=f"{account.name} (renamed in CRM)")
    owned = [a for a in accounts if (a.pk, OwnerRole.LAND_AE) in current]
    sellers = list(User.objects.filter(is_active=True, role=Role.AE).values_list("pk", flat=True))
    if owned:
        before = current[(owned[0].pk, OwnerRole.LAND_AE)]
        after = next((pk for pk in sellers if pk != before and pk in users), None)
        if after is not None:
            fake.update("Account", owned[0].external_id, OwnerId=users[after])
    logo = fake.add("Account", Name="New Logo from the CRM", Segment__c="SMB", OwnerId=next(iter(users.values()), None))
    # The demo's own contracts came in by CSV and stay as they are; the CRM has two new wins.
    for account_id, amount, term in (
        (logo["Id"], 60000, 12),
        (accounts[0].external_id if accounts else logo["Id"], 150000, 24),
    ):
        fake.add(
            "Opportunity",
            AccountId=account_id,
            Name="Closed won in the CRM",
            Amount=amount,
            CloseDate=(today - dt.timedelta(days=10)).isoformat(),
            StageName="Closed Won",
            IsWon=True,
            IsClosed=True,
            Term_Months__c=term,
            Ramp_Days__c=90,
        )
    return len(accounts)


class Command(BaseCommand):
    help = "Serve a local fake Salesforce or HubSpot with demo data and point a demo connection at it."

    def add_arguments(self, parser):
        parser.add_argument("provider", choices=Provider.values)
        parser.add_argument("--port", type=int, default=0, help="Default: 8765 (Salesforce) or 8766 (HubSpot).")

    def handle(self, *args, provider: str, port: int, **options):
        tls_dir = Path(settings.BASE_DIR) / ".run" / "crm-fake"
        if provider == Provider.SALESFORCE:
            api = FakeSalesforce()
            count = mirror_demo_company(api)
            running = RunningFake(api, port=port or 8765, tls_dir=tls_dir)
            credentials = {"access_token": "fake-session", "refresh_token": "fake-refresh"}
            what = f"{count} demo accounts mirrored, with a few CRM-side edits"
        else:
            api = FakeHubSpot()
            emails = list(User.objects.filter(is_active=True).order_by("email").values_list("email", flat=True)[:6])
            if not emails:
                raise CommandError("The database has no people: run make run (or manage.py seed_demo) first.")
            populate_hubspot(api, emails=emails, companies=40, deals=60)
            running = RunningFake(api, port=port or 8766)
            credentials = {"access_token": "pat-fake"}
            what = "40 companies and 60 closed-won deals"
        name = f"Demo {Provider(provider).label} (local fake)"
        connection, _ = Connection.objects.update_or_create(
            name=name,
            defaults={
                "provider": provider,
                "base_url": running.url,
                "portal_id": "" if provider == Provider.SALESFORCE else "4242",
                "ca_file": running.ca_file,
                "credentials": encrypt_json(credentials),
                "mapping": default_mapping(provider),
                "cursors": {},
            },
        )
        running.start()
        self.stdout.write(f"Fake {Provider(provider).label} at {running.url}: {what}.")
        self.stdout.write(f"Connection “{name}” → {settings.SITE_URL}/data/connections/{connection.pk}/ (Ctrl-C stops)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            running.stop()
