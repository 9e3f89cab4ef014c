"""GET /api/v1/exports/{table}: the files' columns through a keyset cursor, scoped like the pages."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client

from comp.models import LedgerLine, LineKind
from revops.api_keys import api_key_create
from revops.models import ApiKey
from tests.exports.conftest import D
from usage.models import DailyRollup

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _settled_at_once(settings):
    # Rows written by this test are served at once (the default holds them back 60 s).
    settings.EXPORTS_API_SETTLE_SECONDS = 0


@pytest.fixture
def key_for():
    def make(person) -> str:
        return api_key_create(name="bi", scopes=[ApiKey.Scope.READ], created_by=person)[1]

    return make


def get(path: str, key: str, **params):
    return Client().get(path, params, headers={"Authorization": f"Bearer {key}"})


def walk(table: str, key: str, limit: int, between=None) -> tuple[list[dict], list[bool]]:
    rows, flags, cursor, page = [], [], None, 0
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = get(f"/api/v1/exports/{table}", key, **params).json()
        rows += body["rows"]
        flags.append(body["has_more"])
        cursor, page = body["next_cursor"], page + 1
        if between:
            between(page)
        if not body["has_more"]:
            return rows, flags


def test_finance_reads_every_rollup_in_pages_with_the_files_columns(world, people, key_for):
    rows, flags = walk("rollups", key_for(people["finance"]), limit=2)

    assert rows == [
        {"account": "acme", "meter": "api-calls", "day": "2026-04-29", "quantity": "1200.500000",
         "revenue": "12.005000", "event_count": 3},
        {"account": "acme", "meter": "storage-gb", "day": "2026-04-29", "quantity": "10.000000",
         "revenue": "2.500000", "event_count": 1},
        {"account": "globex", "meter": "api-calls", "day": "2026-04-29", "quantity": "7.000000",
         "revenue": "0.070000", "event_count": 7},
        {"account": "acme", "meter": "api-calls", "day": "2026-04-30", "quantity": "100.000000",
         "revenue": "1.000000", "event_count": 1},
    ]  # fmt: skip
    assert flags == [True, False]  # 4 rows in pages of 2: the second page knows nothing follows


def test_an_ae_reads_only_the_rollups_and_metrics_of_their_book(world, people, key_for):
    key = key_for(people["ae"])

    rollups = get("/api/v1/exports/rollups", key).json()["rows"]
    other = get("/api/v1/exports/rollups", key_for(people["other"])).json()["rows"]
    metrics = get("/api/v1/exports/account_metrics", key).json()["rows"]

    assert {r["account"] for r in rollups} == {"acme"} and len(rollups) == 3
    assert [(r["account"], r["quantity"]) for r in other] == [("globex", "7.000000")]
    assert [(m["account"], m["run_rate"], m["burn_rate"]) for m in metrics] == [("acme", "73000.00", "0.3042")]


def test_ledger_lines_are_their_payees_own_and_finances(world, people, key_for):
    mine = get("/api/v1/exports/ledger_lines", key_for(people["ae"])).json()["rows"]
    others = get("/api/v1/exports/ledger_lines", key_for(people["other"])).json()["rows"]
    finance = get("/api/v1/exports/ledger_lines", key_for(people["finance"])).json()["rows"]

    assert [(r["person"], r["amount"], r["inputs"]) for r in mine] == [
        ("ae@example.test", "123.45", '{"formula":"1234.50 × 10%"}')
    ]
    assert others == [] and len(finance) == 1


def test_a_walk_sees_every_row_once_while_rows_are_written_between_pages(world, people, key_for):
    key = key_for(people["finance"])
    acme, api = world["acme"], world["api"]

    def write(page: int) -> None:
        if page <= 3:
            DailyRollup.objects.create(
                account=acme, meter=api, day=dt.date(2026, 5, page), quantity=1, revenue=1, event_count=1
            )
            LedgerLine.objects.create(
                person=people["ae"], period=dt.date(2026, 5, 1), kind=LineKind.SPIFF, key=f"s{page}", amount=1
            )

    rollups, _ = walk("rollups", key, limit=1, between=write)
    lines, _ = walk("ledger_lines", key, limit=1)

    # 4 rollups at the start + 3 written mid-walk, each after the cursor (later days)
    assert [(r["day"], r["quantity"]) for r in rollups][-3:] == [
        ("2026-05-01", "1.000000"), ("2026-05-02", "1.000000"), ("2026-05-03", "1.000000"),
    ]  # fmt: skip
    keys = [(r["account"], r["meter"], r["day"]) for r in rollups]
    assert len(keys) == 7 and len(set(keys)) == 7
    assert [line["key"] for line in lines] == ["land:acme", "s1", "s2", "s3"]


def test_a_kept_cursor_reads_only_what_was_added_or_changed_since(world, people, key_for):
    key = key_for(people["finance"])
    first = get("/api/v1/exports/alerts", key).json()
    assert [a["state"] for a in first["rows"]] == ["open"] and first["has_more"] is False

    alert = world["alert"]
    alert.state = "acknowledged"
    alert.save()  # updated_at moves to now: after the cursor
    later = get("/api/v1/exports/alerts", key, cursor=first["next_cursor"]).json()

    assert [(a["id"], a["state"]) for a in later["rows"]] == [(alert.pk, "acknowledged")]
    again = get("/api/v1/exports/alerts", key, cursor=later["next_cursor"]).json()
    assert again["rows"] == [] and again["has_more"] is False


def test_rows_just_written_wait_out_the_settle_window(world, people, key_for, settings):
    settings.EXPORTS_API_SETTLE_SECONDS = 60

    body = get("/api/v1/exports/ledger_lines", key_for(people["finance"])).json()

    assert body["rows"] == []  # the one line was written seconds ago; served after 60 s


def test_since_and_until_pick_partition_days_and_stay_with_the_cursor(world, people, key_for):
    key = key_for(people["finance"])

    page = get("/api/v1/exports/rollups", key, since="2026-04-30", until="2026-04-30", limit=1).json()
    after = get("/api/v1/exports/rollups", key, cursor=page["next_cursor"], since="2026-01-01").json()

    assert [r["day"] for r in page["rows"]] == ["2026-04-30"] and page["has_more"] is False
    assert after["rows"] == []


def test_the_tables_endpoint_lists_every_table_with_typed_columns(world, people, key_for):
    body = get("/api/v1/exports", key_for(people["ae"])).json()

    names = [t["name"] for t in body["tables"]]
    rollups = next(t for t in body["tables"] if t["name"] == "rollups")
    assert names == ["account_metrics", "rollups", "alerts", "ledger_lines"]
    assert [(c["name"], c["type"]) for c in rollups["columns"]][3] == ("quantity", "decimal(28,6)")
    assert rollups["cursor_order"] == ["day", "id"]


@pytest.mark.parametrize(
    ("path", "params", "status", "detail"),
    [
        (
            "/api/v1/exports/invoices",
            {},
            404,
            "No exported table 'invoices'; the tables are account_metrics, rollups, alerts, ledger_lines.",
        ),
        ("/api/v1/exports/rollups", {"cursor": "abc"}, 400, "cursor is not one this API issued"),
        ("/api/v1/exports/rollups", {"limit": "0"}, 400, "limit must be a whole number from 1 to 5000; not '0'."),
        ("/api/v1/exports/rollups", {"limit": "5001"}, 400, "limit must be a whole number from 1 to 5000"),
        ("/api/v1/exports/rollups", {"since": "2026-13-01"}, 400, "since must be a date as YYYY-MM-DD"),
        ("/api/v1/exports/rollups", {"since": "2026-05-02", "until": "2026-05-01"}, 400, "since (2026-05-02) is after"),
    ],
)
def test_bad_requests_say_what_is_wrong(world, people, key_for, path, params, status, detail):
    response = get(path, key_for(people["finance"]), **params)

    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)


def test_a_cursor_from_another_table_or_tampered_with_is_refused(world, people, key_for):
    key = key_for(people["finance"])
    cursor = get("/api/v1/exports/rollups", key, limit=1).json()["next_cursor"]

    other = get("/api/v1/exports/alerts", key, cursor=cursor)
    tampered = get("/api/v1/exports/rollups", key, cursor=cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB"))

    assert other.status_code == 400 and tampered.status_code == 400
    assert tampered.json()["detail"].startswith("cursor is not one this API issued")


def test_without_a_key_or_session_the_api_answers_401(world):
    response = Client().get("/api/v1/exports/rollups")

    assert response.status_code == 401


def test_money_keeps_its_scale_in_json(world, people, key_for):
    DailyRollup.objects.filter(day=D, account=world["globex"]).update(revenue=Decimal("0"))

    rows = get("/api/v1/exports/rollups", key_for(people["other"])).json()["rows"]

    assert rows[0]["revenue"] == "0.000000"
