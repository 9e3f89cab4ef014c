"""Partitions on a folder and in an S3-compatible bucket: exact rows in CSV and Parquet, the
layout, the manifest, atomic and idempotent re-exports, and which days the daily task redoes."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from exports.crypto import decrypt_json
from exports.models import ExportedPartition, ExportRun, RunState
from exports.services import due_plan, run_execute, run_request_range, target_create, target_test
from revops.errors import ApplicationError
from tests.exports.conftest import ALERT_CHANGED_AT, D, today_utc
from usage.models import DailyRollup

pytestmark = pytest.mark.django_db

ROLLUPS_CSV = (
    "account,meter,day,quantity,revenue,event_count\n"
    "acme,api-calls,2026-04-29,1200.500000,12.005000,3\n"
    "acme,storage-gb,2026-04-29,10.000000,2.500000,1\n"
    "globex,api-calls,2026-04-29,7.000000,0.070000,7\n"
)


def folder_target(tmp_path, **kwargs):
    return target_create(
        name=kwargs.pop("name", "Lake"),
        url=f"file://{tmp_path / 'lake'}",
        formats=kwargs.pop("formats", ["csv", "parquet"]),
        tables=kwargs.pop("tables", ["account_metrics", "rollups", "alerts", "ledger_lines"]),
        **kwargs,
    )


def export(target, first, last, tables=None) -> ExportRun:
    run = run_request_range(target=target, tables=tables or target.tables, first=first, last=last)
    run = run_execute(run.pk)
    target.refresh_from_db()
    return run


def test_a_day_of_rollups_is_written_as_csv_and_parquet_with_exact_values(world, tmp_path):
    target = folder_target(tmp_path, tables=["rollups"])

    run = export(target, D, D)

    part = tmp_path / "lake" / "rollups" / "dt=2026-04-29"
    assert run.state == RunState.SUCCEEDED, run.error
    assert sorted(p.name for p in part.iterdir()) == ["_manifest.json", "part-0000.csv", "part-0000.parquet"]
    assert (part / "part-0000.csv").read_text() == ROLLUPS_CSV
    table = pq.read_table(part / "part-0000.parquet")
    assert table.schema.field("quantity").type == pa.decimal128(28, 6)
    assert table.schema.field("revenue").type == pa.decimal128(24, 6)
    assert table.schema.field("day").type == pa.date32()
    assert table.to_pylist() == [
        {"account": "acme", "meter": "api-calls", "day": D, "quantity": Decimal("1200.500000"),
         "revenue": Decimal("12.005000"), "event_count": 3},
        {"account": "acme", "meter": "storage-gb", "day": D, "quantity": Decimal("10.000000"),
         "revenue": Decimal("2.500000"), "event_count": 1},
        {"account": "globex", "meter": "api-calls", "day": D, "quantity": Decimal("7.000000"),
         "revenue": Decimal("0.070000"), "event_count": 7},
    ]  # fmt: skip
    # 3 rows, 1 partition, 2 data files + the manifest
    assert run.counts["rollups"]["rows"] == 3 and run.counts["rollups"]["files"] == 3
    assert target.partitions.get().rows == 3


def test_the_manifest_counts_rows_names_columns_and_hashes_each_file(world, tmp_path):
    target = folder_target(tmp_path, tables=["rollups"])

    export(target, D, D)

    part = tmp_path / "lake" / "rollups" / "dt=2026-04-29"
    manifest = json.loads((part / "_manifest.json").read_text())
    assert manifest["rows"] == 3 and manifest["table"] == "rollups" and manifest["dt"] == "2026-04-29"
    assert [(c["name"], c["type"]) for c in manifest["columns"]] == [
        ("account", "string"),
        ("meter", "string"),
        ("day", "date"),
        ("quantity", "decimal(28,6)"),
        ("revenue", "decimal(24,6)"),
        ("event_count", "int64"),
    ]
    for f in manifest["files"]:
        data = (part / f["name"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest() and f["bytes"] == len(data)
    assert manifest["exported_at"].endswith("Z")


def test_metrics_alerts_and_ledger_lines_have_their_columns_units_and_utc_times(world, tmp_path):
    target = folder_target(tmp_path, formats=["parquet", "csv"])
    written_today = today_utc()

    export(target, D, D, tables=["account_metrics", "alerts"])
    export(target, written_today, written_today, tables=["ledger_lines"])

    lake = tmp_path / "lake"
    metrics = pq.read_table(lake / "account_metrics" / "dt=2026-04-29" / "part-0000.parquet").to_pylist()
    assert len(metrics) == 1
    m = metrics[0]
    assert (m["account"], m["as_of"], m["run_rate"], m["committed_arr"], m["burn_rate"], m["band"]) == (
        "acme", D, Decimal("73000.00"), Decimal("240000.00"), Decimal("0.3042"), "escalate",
    )  # fmt: skip
    assert m["credit_balance"] is None and m["health_score"] == 68
    assert m["computed_at"] == dt.datetime(2026, 4, 30, 0, 31, 5, tzinfo=dt.UTC)
    alerts_csv = (lake / "alerts" / "dt=2026-04-29" / "part-0000.csv").read_text().splitlines()
    assert alerts_csv[0].split(",")[:7] == [
        "id", "account", "kind", "severity", "state", "condition_active", "revenue_at_risk",
    ]  # fmt: skip
    alert = dict(zip(alerts_csv[0].split(","), alerts_csv[1].split(","), strict=True))
    assert alert["account"] == "acme" and alert["kind"] == "below_floor" and alert["severity"] == "3"
    assert alert["revenue_at_risk"] == "5000.00" and alert["owner"] == "csm@example.test"
    assert alert["escalated_to"] == "" and alert["updated_at"] == "2026-04-29T12:00:00Z"
    assert alert["opened_at"] == ALERT_CHANGED_AT.isoformat().replace("+00:00", "Z")
    lines = pq.read_table(lake / "ledger_lines" / f"dt={written_today}" / "part-0000.parquet")
    assert lines.schema.field("amount").type == pa.decimal128(16, 2)
    (line,) = lines.to_pylist()
    assert (line["person"], line["account"], line["kind"], line["amount"], line["period"]) == (
        "ae@example.test", "acme", "commission", Decimal("123.45"), dt.date(2026, 4, 1),
    )  # fmt: skip
    assert json.loads(line["inputs"]) == {"formula": "1234.50 × 10%"}


def test_a_day_without_rows_is_written_as_an_empty_partition_with_the_columns(world, tmp_path):
    target = folder_target(tmp_path, tables=["rollups"])

    export(target, D - dt.timedelta(days=1), D - dt.timedelta(days=1))

    part = tmp_path / "lake" / "rollups" / "dt=2026-04-28"
    assert (part / "part-0000.csv").read_text() == "account,meter,day,quantity,revenue,event_count\n"
    empty = pq.read_table(part / "part-0000.parquet")
    assert empty.num_rows == 0 and empty.schema.names[3] == "quantity"
    assert json.loads((part / "_manifest.json").read_text())["rows"] == 0


def test_a_re_export_replaces_the_days_files_and_leaves_no_temporary_file(world, tmp_path):
    target = folder_target(tmp_path, tables=["rollups"])
    export(target, D, D)
    DailyRollup.objects.filter(account=world["globex"], day=D).update(quantity=Decimal("8"), revenue=Decimal("0.08"))

    export(target, D, D)

    part = tmp_path / "lake" / "rollups" / "dt=2026-04-29"
    assert sorted(p.name for p in part.iterdir()) == ["_manifest.json", "part-0000.csv", "part-0000.parquet"]
    assert (part / "part-0000.csv").read_text().splitlines()[-1] == "globex,api-calls,2026-04-29,8.000000,0.080000,7"
    assert pq.read_table(part / "part-0000.parquet").column("quantity").to_pylist()[-1] == Decimal("8.000000")
    assert ExportedPartition.objects.filter(target=target).count() == 1


def test_a_range_writes_one_partition_per_day_and_moves_the_last_exported_day(world, tmp_path):
    target = folder_target(tmp_path, tables=["rollups"], formats=["parquet"])

    run = export(target, D, D + dt.timedelta(days=1))

    lake = tmp_path / "lake" / "rollups"
    assert sorted(p.name for p in lake.iterdir()) == ["dt=2026-04-29", "dt=2026-04-30"]
    assert pq.read_table(lake / "dt=2026-04-30" / "part-0000.parquet").num_rows == 1
    # 3 + 1 rows, 2 partitions
    assert run.counts["rollups"]["rows"] == 4 and run.counts["rollups"]["partitions"] == 2
    target.refresh_from_db()
    assert target.last_exported == {"rollups": "2026-04-30"}


def test_the_daily_plan_is_the_days_since_the_last_export_and_the_days_whose_data_changed(world, tmp_path):
    target = folder_target(tmp_path, tables=["rollups", "account_metrics"])
    export(target, D, D + dt.timedelta(days=1))
    today = D + dt.timedelta(days=3)  # yesterday = May 1: new for both tables

    assert due_plan(target=target, today=today) == {
        "rollups": ["2026-05-01"],
        "account_metrics": ["2026-05-01"],
    }

    DailyRollup.objects.filter(account=world["acme"], day=D, meter=world["api"]).update(revenue=Decimal("12.5"))
    assert due_plan(target=target, today=today) == {
        "rollups": ["2026-04-29", "2026-05-01"],
        "account_metrics": ["2026-05-01"],
    }


def test_a_moved_alert_makes_the_daily_plan_rewrite_the_day_it_left(world, tmp_path):
    target = folder_target(tmp_path, tables=["alerts"])
    export(target, D, D)
    world["alert"].save()  # any change stamps updated_at now: the alert leaves D's partition

    plan = due_plan(target=target, today=D + dt.timedelta(days=3))

    # D's partition now holds no alert (fingerprint "empty"), and April 30 – May 1 are new days
    assert plan == {"alerts": ["2026-04-29", "2026-04-30", "2026-05-01"]}


def test_s3_targets_write_the_same_partition_through_a_real_s3_server(world, bucket):
    target = target_create(
        name="Bucket",
        url=f"s3://{bucket['name']}/warehouse/revops?endpoint={bucket['endpoint']}&region=us-east-1",
        formats=["csv", "parquet"],
        tables=["rollups"],
        credentials={"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI"},
    )

    run = export(target, D, D)

    assert run.state == RunState.SUCCEEDED, run.error
    client, name = bucket["client"], bucket["name"]
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=name)["Contents"])
    assert keys == [
        "warehouse/revops/rollups/dt=2026-04-29/_manifest.json",
        "warehouse/revops/rollups/dt=2026-04-29/part-0000.csv",
        "warehouse/revops/rollups/dt=2026-04-29/part-0000.parquet",
    ]
    body = client.get_object(Bucket=name, Key=keys[1])["Body"].read().decode()
    assert body == ROLLUPS_CSV
    parquet = client.get_object(Bucket=name, Key=keys[2])["Body"].read()
    assert pq.read_table(io.BytesIO(parquet)).column("revenue").to_pylist() == [
        Decimal("12.005000"), Decimal("2.500000"), Decimal("0.070000"),
    ]  # fmt: skip
    assert decrypt_json(target.credentials)["secret_access_key"] == "wJalrXUtnFEMI"
    assert "wJalrXUtnFEMI" not in target.credentials


def test_testing_an_s3_target_writes_and_deletes_a_probe(world, bucket):
    target = target_create(
        name="Bucket",
        url=f"s3://{bucket['name']}/bi?endpoint={bucket['endpoint']}&region=us-east-1",
        formats=["parquet"],
        tables=["rollups"],
        credentials={"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI"},
    )

    message = target_test(target=target)

    assert message.startswith("Wrote, read back and deleted a probe object in bucket")
    assert bucket["client"].list_objects_v2(Bucket=bucket["name"]).get("KeyCount") == 0


def test_an_export_to_a_missing_bucket_fails_the_run_saying_why(world, bucket):
    target = target_create(
        name="Nowhere",
        url=f"s3://no-such-bucket-here/bi?endpoint={bucket['endpoint']}&region=us-east-1",
        formats=["parquet"],
        tables=["rollups"],
        credentials={"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI"},
    )

    run = export(target, D, D)

    assert run.state == RunState.FAILED
    assert "NoSuchBucket" in run.error
    assert not ExportedPartition.objects.exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://host/x", "must start with file:/// (a folder) or s3://"),
        ("file://relative/x", "three slashes, no host"),
        ("file:///", "absolute folder path other than /"),
        ("s3:///prefix", "names its bucket"),
        ("s3://b/p?endpoint=127.0.0.1:9000", "endpoint must be an http:// or https:// URL"),
        ("s3://b/p?token=x", "Unknown S3 URL option token"),
    ],
)
def test_a_bad_target_url_is_refused_saying_what_is_wrong(db, url, expected):
    with pytest.raises(ApplicationError) as info:
        target_create(name="x", url=url, formats=["csv"], tables=["rollups"])

    assert expected in info.value.message and info.value.details == {"field": "url"}


def test_a_range_over_a_year_or_backwards_is_refused(db, tmp_path):
    target = folder_target(tmp_path)

    with pytest.raises(ApplicationError, match="At most 366 days a run"):
        run_request_range(target=target, tables=["rollups"], first=dt.date(2025, 1, 1), last=dt.date(2026, 1, 2))
    with pytest.raises(ApplicationError, match="first day must not be after"):
        run_request_range(target=target, tables=["rollups"], first=D, last=D - dt.timedelta(days=1))
    assert not ExportRun.objects.exists()
