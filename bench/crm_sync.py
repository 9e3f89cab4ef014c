"""CRM sync through the real clients against the local fake servers (HTTP, in this process).

    python -m bench.crm_sync [--accounts 5000] [--opportunities 20000] [--changes 100]

In ``revops_bench_crm`` (dropped and re-created): a fake Salesforce org over https with
``--accounts`` accounts (a third of them divisions), an owner each, a CSM team member on
every other one and ``--opportunities`` closed-won deals; then, timed, each a whole run
(``integrations.services.run_execute``: fetch over HTTP, apply through the accounts
imports, log):

1. the first read (every record);
2. an incremental read after ``--changes`` accounts changed in the CRM;
3. a write-back of every account's metrics (AccountMetrics written for each first),
   200 a Composite call; then a second write-back, which must send nothing.

The same on a fake HubSpot portal is reported for information (100 records a page).

Budgets (issue 17): first read < 60 s, incremental < 5 s, write-back of 5,000 < 30 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench import common

NAME = "crm_sync"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.crm_sync", description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=5000)
    parser.add_argument("--opportunities", type=int, default=20000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--skip-hubspot", action="store_true")
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def _people(n: int) -> list[str]:
    from revops.models import Role, User

    emails = [f"seller{i}@bench.example" for i in range(n)]
    User.objects.bulk_create([User(email=e, name=f"Seller {i}", role=Role.AE) for i, e in enumerate(emails)])
    User.objects.create(email="cs@bench.example", name="CS", role=Role.CSM)
    return emails


def _metrics(today: dt.date) -> None:
    from django.utils import timezone

    from accounts.models import Account
    from usage.models import AccountMetrics

    AccountMetrics.objects.bulk_create(
        [
            AccountMetrics(
                account_id=pk,
                as_of=today,
                run_rate=Decimal(1000 + pk % 997),
                committed_arr=Decimal(100000),
                burn_rate=Decimal(pk % 150) / 100,
                band="adopt",
                net_new_arr=0,
                revenue_30d=0,
                consumed_in_term=0,
                meters_active=1,
                workloads=1,
                feature_adoption=0,
                health_score=pk % 100,
                next_gate_on=today + dt.timedelta(days=pk % 90),
                computed_at=timezone.now(),
            )
            for pk in Account.objects.values_list("pk", flat=True)
        ],
        batch_size=2000,
        ignore_conflicts=True,  # the HubSpot part adds its own accounts to the Salesforce ones
    )


def _timed(connection, kind: str, today: dt.date):
    from integrations.services import run_execute, run_request

    started = time.perf_counter()
    run = run_execute(run_request(connection=connection, kind=kind).pk, today=today)
    seconds = time.perf_counter() - started
    if run.state != "succeeded":
        raise RuntimeError(f"{kind} run failed: {run.error}")
    connection.refresh_from_db()
    return run, seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = common.Summary(NAME)
    url = common.database_url("_crm")
    common.heading(f"CRM sync against the local fakes ({common.database_name(url)})")
    common.note(common.machine_line())
    common.note(common.code_version())
    common.create_database(url, drop_first=True)
    common.setup(url)

    from integrations.fakes.data import populate_hubspot, populate_salesforce
    from integrations.fakes.hubspot import FakeHubSpot
    from integrations.fakes.salesforce import FakeSalesforce
    from integrations.fakes.server import RunningFake
    from integrations.models import Provider, RunKind
    from integrations.services import connection_create

    today = dt.date(2026, 6, 1)
    emails = _people(40)
    api = FakeSalesforce()
    ids = populate_salesforce(
        api, emails=emails, csm_emails=["cs@bench.example"], accounts=args.accounts, opportunities=args.opportunities
    )
    with tempfile.TemporaryDirectory() as tls, RunningFake(api, tls_dir=Path(tls)) as running:
        connection = connection_create(
            name="bench org",
            provider=Provider.SALESFORCE,
            base_url=running.url,
            ca_file=running.ca_file,
            credentials={"access_token": "fake-session"},
        )
        run, first = _timed(connection, RunKind.READ, today)
        common.note(f"first read: {first:.1f} s, counts {run.counts}, {len(api.requests)} HTTP requests")
        summary.check(
            f"Salesforce first read, {args.accounts:,} accounts + {args.opportunities:,} opportunities",
            f"{first:.1f} s",
            "< 60 s",
            first < 60,
        )
        for crm_id in ids["accounts"][: args.changes]:
            api.update("Account", crm_id, Name=f"Renamed {crm_id}")
        before = len(api.requests)
        run, incremental = _timed(connection, RunKind.READ, today)
        common.note(
            f"incremental read: {incremental:.2f} s, counts {run.counts}, {len(api.requests) - before} requests"
        )
        summary.check(
            f"Salesforce incremental read, {args.changes} changed accounts",
            f"{incremental:.2f} s",
            "< 5 s",
            incremental < 5 and run.counts["account"]["updated"] == args.changes,
        )
        _metrics(today)
        run, writeback = _timed(connection, RunKind.WRITEBACK, today)
        common.note(f"write-back: {writeback:.1f} s, counts {run.counts}, {api.composite_calls} Composite calls")
        summary.check(
            f"Salesforce write-back, {run.counts['account']['written']:,} accounts",
            f"{writeback:.1f} s",
            "< 30 s",
            writeback < 30 and run.counts["account"]["written"] == args.accounts,
        )
        calls = api.composite_calls
        run, again = _timed(connection, RunKind.WRITEBACK, today)
        summary.check(
            "Salesforce write-back again, nothing changed",
            f"{again:.2f} s, {run.counts['account']['changed']} sent",
            "sends nothing",
            run.counts["account"]["changed"] == 0 and api.composite_calls == calls,
        )

    if not args.skip_hubspot:
        hub = FakeHubSpot()
        populate_hubspot(
            hub, emails=emails, csm_emails=["cs@bench.example"], companies=args.accounts, deals=args.opportunities
        )
        with RunningFake(hub) as running:
            connection = connection_create(
                name="bench portal",
                provider=Provider.HUBSPOT,
                base_url=running.url,
                portal_id="1",
                credentials={"access_token": "pat-fake"},
            )
            run, first = _timed(connection, RunKind.READ, today)
            summary.info(
                f"HubSpot first read, {args.accounts:,} companies + {args.opportunities:,} deals",
                f"{first:.1f} s ({len(hub.requests)} requests)",
            )
            _metrics(today)
            run, writeback = _timed(connection, RunKind.WRITEBACK, today)
            summary.info(
                f"HubSpot write-back, {run.counts['account'].get('written', 0):,} companies",
                f"{writeback:.1f} s ({hub.batch_calls} batch calls)",
            )
    summary.print()
    summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
