"""A small world with hand-computed values, and a real local S3 server (moto) for the bucket tests.

Day D = 2026-04-29 (UTC):
  rollups   acme × api-calls   quantity 1200.500000  revenue 12.005000  3 events
            acme × storage-gb  quantity 10.000000    revenue 2.500000   1 event
            globex × api-calls quantity 7.000000     revenue 0.070000   7 events
  rollups on D + 1: acme × api-calls 100.000000 / 1.000000 / 1 event
  metrics   acme as of D: run rate 73000.00, committed 240000.00, burn 0.3042 (escalate)
  alert     acme below_floor, high (3), open, revenue at risk 5000.00, last changed D 12:00 UTC
  ledger    a commission of 123.45 for the AE on acme, written today (lines are append-only)
"""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal

import boto3
import pytest
from django.utils import timezone
from moto.server import ThreadedMotoServer

from accounts.models import Account, OwnerRole, Ownership, Segment
from comp.models import LedgerLine, LineKind
from revops.models import Role
from usage.models import AccountMetrics, Alert, AlertKind, DailyRollup, Meter

D = dt.date(2026, 4, 29)
ALERT_CHANGED_AT = dt.datetime(2026, 4, 29, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def people(ae, make_user):
    return {
        "ae": ae,
        "other": make_user(Role.AE, email="other@example.test", name="Olive Other"),
        "csm": make_user(Role.CSM, email="csm@example.test", name="Casey Success"),
        "finance": make_user(Role.FINANCE, email="fin@example.test", name="Fran Finance"),
    }


@pytest.fixture
def world(people):
    acme = Account.objects.create(external_id="acme", name="Acme", segment=Segment.ENTERPRISE)
    globex = Account.objects.create(external_id="globex", name="Globex", segment=Segment.MID_MARKET)
    Ownership.objects.create(account=acme, person=people["ae"], role=OwnerRole.LAND_AE, start_on=dt.date(2026, 1, 1))
    Ownership.objects.create(account=acme, person=people["csm"], role=OwnerRole.CSM, start_on=dt.date(2026, 1, 1))
    Ownership.objects.create(
        account=globex, person=people["other"], role=OwnerRole.LAND_AE, start_on=dt.date(2026, 1, 1)
    )
    api = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    storage = Meter.objects.create(key="storage-gb", name="Storage", unit="GB")
    for account, meter, day, quantity, revenue, events in (
        (acme, api, D, "1200.5", "12.005", 3),
        (acme, storage, D, "10", "2.5", 1),
        (globex, api, D, "7", "0.07", 7),
        (acme, api, D + dt.timedelta(days=1), "100", "1", 1),
    ):
        DailyRollup.objects.create(
            account=account,
            meter=meter,
            day=day,
            quantity=Decimal(quantity),
            revenue=Decimal(revenue),
            event_count=events,
        )
    AccountMetrics.objects.create(
        account=acme,
        as_of=D,
        run_rate=Decimal("73000.00"),
        committed_arr=Decimal("240000.00"),
        burn_rate=Decimal("0.3042"),
        band="escalate",
        net_new_arr=Decimal("52722.22"),
        revenue_30d=Decimal("6000.00"),
        consumed_in_term=Decimal("14000.00"),
        last_usage_on=D,
        meters_active=2,
        workloads=1,
        feature_adoption=Decimal("0.5000"),
        health_score=68,
        computed_at=dt.datetime(2026, 4, 30, 0, 31, 5, tzinfo=dt.UTC),
    )
    alert = Alert.objects.create(
        account=acme,
        kind=AlertKind.BELOW_FLOOR,
        severity=3,
        revenue_at_risk=Decimal("5000.00"),
        owner=people["csm"],
        opened_on=D,
        last_seen_on=D,
    )
    Alert.objects.filter(pk=alert.pk).update(opened_at=ALERT_CHANGED_AT, updated_at=ALERT_CHANGED_AT)
    line = LedgerLine.objects.create(
        person=people["ae"],
        period=dt.date(2026, 4, 1),
        account=acme,
        kind=LineKind.COMMISSION,
        key="land:acme",
        amount=Decimal("123.45"),
        inputs={"formula": "1234.50 × 10%"},
        explanation="Land commission.",
    )
    return {"acme": acme, "globex": globex, "alert": Alert.objects.get(pk=alert.pk), "line": line, "api": api}


def today_utc() -> dt.date:
    return timezone.now().astimezone(dt.UTC).date()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-compatible HTTP server on a free local port (a real server, not a patch)."""
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_server):
    import uuid

    name = f"bi-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="wJalrXUtnFEMI",
    )
    client.create_bucket(Bucket=name)
    return {"name": name, "client": client, "endpoint": s3_server}
