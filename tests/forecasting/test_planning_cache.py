"""Planning computations are kept per as-of date until the rollups of their range (or the
accounts and contracts) change: usage.ingestion.changes and forecasting.cache."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from forecasting import cache as planning_cache
from tests.forecasting import test_planning as planning
from tests.forecasting.test_planning import END, START, account, client_for, contract, daily, text
from usage.ingestion.changes import rollups_version
from usage.models import DailyRollup, RollupMonthChange

pytestmark = pytest.mark.django_db
D = Decimal
# The planning tests' fixtures: the same meter (no tiers) and the reference's waterfall example.
meter, domain_example, finance = planning.meter, planning.domain_example, planning.finance


def test_every_write_to_rollups_records_the_months_it_touched(meter):
    a = account("a")
    daily(a, meter, dt.date(2026, 2, 3), "5", days=5)  # Jan 30 – Feb 3: two months, one statement
    first = dict(RollupMonthChange.objects.values_list("month", "seq"))
    assert sorted(first) == [dt.date(2026, 1, 1), dt.date(2026, 2, 1)]
    assert first[dt.date(2026, 1, 1)] == first[dt.date(2026, 2, 1)]

    DailyRollup.objects.filter(day=dt.date(2026, 2, 3)).update(revenue=D("6"))
    after_update = dict(RollupMonthChange.objects.values_list("month", "seq"))
    assert after_update[dt.date(2026, 1, 1)] == first[dt.date(2026, 1, 1)]  # January untouched
    assert after_update[dt.date(2026, 2, 1)] > first[dt.date(2026, 2, 1)]

    DailyRollup.objects.filter(day=dt.date(2026, 1, 30)).delete()
    after_delete = dict(RollupMonthChange.objects.values_list("month", "seq"))
    assert after_delete[dt.date(2026, 1, 1)] > first[dt.date(2026, 1, 1)]


def test_the_version_of_a_range_moves_only_with_its_own_months(meter):
    a = account("a")
    daily(a, meter, dt.date(2025, 6, 30), "1")
    daily(a, meter, dt.date(2026, 6, 30), "1")
    last_year = rollups_version(first=dt.date(2025, 6, 1), last=dt.date(2025, 6, 30))
    everything = rollups_version(first=None, last=dt.date(2026, 6, 30))

    daily(a, meter, dt.date(2026, 7, 2), "1", days=1)  # "today's" ingest, in July 2026

    assert rollups_version(first=dt.date(2025, 6, 1), last=dt.date(2025, 6, 30)) == last_year
    assert rollups_version(first=None, last=dt.date(2026, 6, 30)) == everything
    assert rollups_version(first=None, last=dt.date(2026, 7, 31)) != everything


def test_waterfall_rows_are_kept_until_a_rollup_of_their_range_changes(domain_example, meter):
    a, *_ = domain_example
    rows = planning_cache.period_rows(start=START, end=END, segment="smb")
    with CaptureQueriesContext(connection) as queries:
        assert planning_cache.period_rows(start=START, end=END, segment="smb") == rows
    assert len(queries) == 1  # the versions; the rows come from the cache

    # Outside the range (after the end): kept.
    daily(a, meter, END + dt.timedelta(days=40), "999", days=1)
    with CaptureQueriesContext(connection) as queries:
        planning_cache.period_rows(start=START, end=END, segment="smb")
    assert len(queries) == 1

    # Inside it: recomputed. A's last 30 days go from $80 to $81 a day: end run rate
    # 29,200 → 29,565 (81 × 365), C's 10,950 unchanged.
    DailyRollup.objects.filter(account=a, day__gt=END - dt.timedelta(days=30), day__lte=END).update(revenue=D("81"))
    fresh = {row.account_id: row for row in planning_cache.period_rows(start=START, end=END, segment="smb")}
    assert fresh[a.pk].rev_end == D("2430")  # 30 × 81


def test_a_new_contract_recomputes_the_cohorts(domain_example):
    before = planning_cache.land_trajectories(as_of=END)
    e = account("e")
    contract(e, signed=dt.date(2026, 2, 1), start=dt.date(2026, 2, 1), end=dt.date(2027, 1, 31), arr="12000")
    after = planning_cache.land_trajectories(as_of=END)
    assert {t.account_id for t in after} - {t.account_id for t in before} <= {e.pk}
    assert planning_cache.accounts_version() != "0.0"


def test_the_waterfall_page_is_served_warm_and_stays_exact(domain_example, finance, meter):
    client = client_for(finance)
    url = f"/planning/waterfall/?start={START}&end={END}&segment=smb&growth=20"
    cold = text(client.get(url))
    with CaptureQueriesContext(connection) as queries:
        warm = text(client.get(url))
    assert warm == cold
    assert "Start run rate $36,500" in warm
    # Session, user, the as-of day, the versions of the two cached results: nothing that
    # reads rollups or contracts.
    assert not [q for q in queries if "usage_dailyrollup r" in q["sql"] or "FROM accounts_contract c" in q["sql"]]

    a, *_ = domain_example
    DailyRollup.objects.filter(account=a, day__gt=START - dt.timedelta(days=30), day__lte=START).update(revenue=D("90"))
    # Start run rate: A 90 × 365 = 32,850 + B 7,300 = 40,150.
    assert "Start run rate $40,150" in text(client.get(url))
