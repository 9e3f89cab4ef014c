"""The metrics refresh as Celery runs it: after new usage, through a real worker."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Account, Contract, Segment
from revops.api_keys import api_key_create
from revops.models import ApiKey
from usage.models import AccountMetrics, Meter, MeterTier, MetricsRefresh


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_new_usage_refreshes_metrics_through_a_real_worker(celery_worker, celery_redis_url):
    """API batch → commit → fold task → (debounced) refresh task → snapshot for yesterday."""
    yesterday = timezone.now().astimezone(dt.UTC).date() - dt.timedelta(days=1)
    acme = Account.objects.create(external_id="acme", name="Acme", segment=Segment.SMB)
    Contract.objects.create(
        external_id="acme-1",
        account=acme,
        pricing_model="commit",
        signed_on=yesterday - dt.timedelta(days=200),
        start_on=yesterday - dt.timedelta(days=200),
        end_on=yesterday + dt.timedelta(days=165),
        committed_arr=36500,
        tcv=36500,
    )
    meter = Meter.objects.create(key="api-calls", name="API calls", unit="call")
    MeterTier.objects.create(meter=meter, up_to=None, unit_price="0.01")
    _, key = api_key_create(name="ingest", scopes=[ApiKey.Scope.EVENTS_WRITE])
    worker = celery_worker(celery_redis_url, env={"METRICS_REFRESH_DELAY_S": "0"})

    # 3,000 calls × $0.01 = $30 yesterday: run rate 30 × 365 / 30 = $365.00, burn 365 / 36,500 = 1%.
    noon = f"{yesterday.isoformat()}T12:00:00Z"
    events = [{"id": "e1", "account": "acme", "meter": "api-calls", "time": noon, "quantity": 3000}]
    response = Client().post(
        "/api/v1/events", events, content_type="application/json", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.json()["accepted"] == 1

    deadline = time.monotonic() + 60
    while not AccountMetrics.objects.filter(account=acme, as_of=yesterday).exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    snapshot = AccountMetrics.objects.filter(account=acme, as_of=yesterday).first()
    assert snapshot is not None, worker.log()
    assert str(snapshot.run_rate) == "365.00"
    assert str(snapshot.burn_rate) == "0.0100"
    assert snapshot.band == "escalate"
    assert MetricsRefresh.objects.filter(as_of=yesterday).exists()


@pytest.mark.django_db
def test_refresh_metrics_command_backfills_oldest_first(capsys):
    from django.core.management import call_command

    Account.objects.create(external_id="acme", name="Acme", segment=Segment.SMB)
    call_command("refresh_metrics", "--since", "2026-11-01", "--as-of", "2026-11-20", "--every", "7")

    days = list(MetricsRefresh.objects.order_by("finished_at").values_list("as_of", flat=True))
    # Every 7 days from Nov 1, then the end day itself: 1, 8, 15, 20.
    assert days == [dt.date(2026, 11, 1), dt.date(2026, 11, 8), dt.date(2026, 11, 15), dt.date(2026, 11, 20)]
    assert "2026-11-20: 1 accounts" in capsys.readouterr().out


@pytest.mark.django_db
def test_refresh_metrics_command_refuses_bad_dates():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="'2026-13-01' is not a date"):
        call_command("refresh_metrics", "--as-of", "2026-13-01")
    with pytest.raises(CommandError, match="--since 2026-11-21 is after --as-of 2026-11-20"):
        call_command("refresh_metrics", "--since", "2026-11-21", "--as-of", "2026-11-20")
