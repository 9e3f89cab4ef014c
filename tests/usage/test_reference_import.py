"""CSV imports of meters (with price tiers) and product releases; every example file in order."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.imports import import_accounts, import_contracts, import_owners
from revops.people_import import import_people
from revops.tabular import CellError
from tests.import_helpers import EXAMPLES, csv_file, example, rejected
from usage.ingestion.csv_import import import_usage_stream
from usage.ingestion.reference_import import import_meters, import_releases, parse_tiers
from usage.models import Meter, MeterTier, ProductRelease, UsageEvent

pytestmark = pytest.mark.django_db

METERS_HEADER = "key,name,unit,unit_price,product_line,feature"
RELEASES_HEADER = "date,name,meters,notes"


def tiers_of(key: str) -> list[tuple[Decimal | None, Decimal]]:
    return [(tier.up_to, tier.unit_price) for tier in MeterTier.objects.filter(meter__key=key)]


IN_ORDER = [
    ("people", import_people),
    ("accounts", import_accounts),
    ("contracts", import_contracts),
    ("owners", import_owners),
    ("meters", import_meters),
    ("releases", import_releases),
]


@pytest.fixture
def meters():
    import_meters(example("meters"))


def test_every_example_file_imports_cleanly_in_order_into_an_empty_database():
    summaries = {name: importer(example(name)).summary for name, importer in IN_ORDER}
    usage = import_usage_stream(example("usage"))

    assert summaries == {
        "people": {"created": 6, "updated": 0, "unchanged": 0, "teams_created": 2, "team_managers_set": 2},
        "accounts": {"created": 8, "updated": 0, "unchanged": 0},
        "contracts": {"created": 6, "updated": 0, "unchanged": 0},
        "owners": {"created": 11, "updated": 0, "unchanged": 0},
        "meters": {"created": 4, "updated": 0, "unchanged": 0},
        "releases": {"created": 2, "updated": 0, "unchanged": 0},
    }
    assert (usage.rows, usage.accepted, usage.duplicates, usage.quarantined) == (20, 20, 0, 0)
    # The extra column `region` and the properties JSON both end up in properties.
    assert UsageEvent.objects.get(event_id="evt-0002").properties == {"region": "us-east", "workload": "support-bot"}


def test_each_example_file_takes_a_fixed_number_of_queries(django_assert_num_queries):
    # Savepoint and its release, one read per table the file names or references, one
    # write per table (people: teams and their managers are a second write to teams).
    expected = {"people": 7, "accounts": 5, "contracts": 6, "owners": 6, "meters": 5, "releases": 6}

    for name, importer in IN_ORDER:
        with django_assert_num_queries(expected[name]):
            importer(example(name))


# --- Meters -----------------------------------------------------------------------------


def test_example_meters_import_with_their_tiers():
    report = import_meters(example("meters"))

    assert report.summary == {"created": 4, "updated": 0, "unchanged": 0}
    assert tiers_of("api-calls") == [
        (Decimal("1000000"), Decimal("0.0004")),
        (Decimal("10000000"), Decimal("0.0003")),
        (None, Decimal("0.0002")),
    ]
    assert tiers_of("llm-tokens") == [(None, Decimal("0.002"))]
    meter = Meter.objects.get(key="compute-min")
    assert (meter.name, meter.unit, meter.product_line, meter.feature) == (
        "Compute minutes",
        "minute",
        "Compute",
        "Batch jobs",
    )


def test_reimporting_the_meters_file_changes_nothing(meters):
    tier_ids = set(MeterTier.objects.values_list("id", flat=True))

    report = import_meters(example("meters"))

    assert report.summary == {"created": 0, "updated": 0, "unchanged": 4}
    assert set(MeterTier.objects.values_list("id", flat=True)) == tier_ids


def test_reimporting_a_meter_replaces_its_tiers(meters):
    report = import_meters(
        csv_file(
            METERS_HEADER,
            "llm-tokens,LLM tokens,1K tokens,0-500000:0.002|500000-:0.0015,AI,Chat completions",
            "storage-gb,Object storage (hot),GB-month,0.023,Platform,Object storage",
        )
    )

    assert report.summary == {"created": 0, "updated": 2, "unchanged": 0}
    assert tiers_of("llm-tokens") == [(Decimal("500000"), Decimal("0.002")), (None, Decimal("0.0015"))]
    assert tiers_of("storage-gb") == [(None, Decimal("0.023"))]
    assert Meter.objects.get(key="storage-gb").name == "Object storage (hot)"


def test_a_tier_list_and_a_plain_price_read_as_tiers():
    assert parse_tiers("0.002") == [(None, Decimal("0.002"))]
    assert parse_tiers(" 0 - 1000 : 0.002 | 1000 - : 0.001 ") == [
        (Decimal("1000"), Decimal("0.002")),
        (None, Decimal("0.001")),
    ]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("100-:0.1", "tier 1 starts at 100; tiers must start at 0"),
        ("0-1000:0.002|2000-:0.001", "tier 2 starts at 2000; tiers must start where tier 1 ends (1000)"),
        ("0-1000:0.002", "the last tier must be open-ended (write it as 1000-:price)"),
        ("0-:0.1|100-:0.2", "tier 1 is open-ended but is not the last tier"),
        ("0-0:0.1|0-:0.2", "tier 1 ends at 0, which is not above its start (0)"),
        ("0-1000:0.123456789|1000-:0.1", "tier 1: 0.123456789 has more than 8 decimal places"),
        ("0-1000:-0.1|1000-:0.1", "tier 1: -0.1 is negative; it must be zero or more"),
        ("0-1000=0.1|1000-:0.1", "tier 1 '0-1000=0.1' is not in the form from-to:price (e.g. 0-1000:0.002)"),
        ("free", "'free' is not a number (digits, optionally a point and decimals)"),
    ],
)
def test_a_malformed_price_says_what_is_wrong(text, reason):
    with pytest.raises(CellError) as caught:
        parse_tiers(text)

    assert str(caught.value) == reason


def test_a_bad_meter_row_rejects_the_file_and_keeps_the_stored_tiers(meters):
    errors = rejected(
        import_meters,
        csv_file(
            METERS_HEADER,
            "llm-tokens,LLM tokens,1K tokens,0.001,AI,Chat completions",
            "gpu hours,GPU hours,hour,2.5,Compute,",
            "storage-gb,Object storage,,0-100:0.03,Platform,",
        ),
    )

    assert errors == [
        {"line": 3, "column": "key", "reason": "'gpu hours' may contain only letters, digits, '-' and '_'"},
        {"line": 4, "column": "unit", "reason": "is required"},
        {
            "line": 4,
            "column": "unit_price",
            "reason": "the last tier must be open-ended (write it as 100-:price)",
        },
    ]
    assert tiers_of("llm-tokens") == [(None, Decimal("0.002"))]


# --- Releases ---------------------------------------------------------------------------


def test_example_releases_import_with_their_meters(meters):
    report = import_releases(example("releases"))

    assert report.summary == {"created": 2, "updated": 0, "unchanged": 0}
    release = ProductRelease.objects.get(name="Chat completions 2.0")
    assert str(release.released_on) == "2026-11-03"
    assert sorted(release.meters.values_list("key", flat=True)) == ["api-calls", "llm-tokens"]


def test_reimporting_the_releases_file_changes_nothing(meters):
    import_releases(example("releases"))

    report = import_releases(example("releases"))

    assert report.summary == {"created": 0, "updated": 0, "unchanged": 2}


def test_a_release_is_updated_by_name_and_its_meters_replaced(meters):
    import_releases(example("releases"))

    report = import_releases(
        csv_file(RELEASES_HEADER, "2026-09-16,Batch jobs v2,compute-min|storage-gb,Spot capacity.")
    )

    assert report.summary == {"created": 0, "updated": 1, "unchanged": 0}
    release = ProductRelease.objects.get(name="Batch jobs v2")
    assert (str(release.released_on), release.notes) == ("2026-09-16", "Spot capacity.")
    assert sorted(release.meters.values_list("key", flat=True)) == ["compute-min", "storage-gb"]


def test_unknown_meters_of_a_release_are_reported(meters):
    errors = rejected(
        import_releases,
        csv_file(RELEASES_HEADER, "2026-12-01,Vision,llm-tokens|vision-images|ocr-pages,", "2026-12-02,Docs,,"),
    )

    assert errors == [
        {"line": 2, "column": "meters", "reason": "unknown meters 'vision-images', 'ocr-pages' (import meters first)"}
    ]
    assert ProductRelease.objects.count() == 0


def test_release_dates_are_iso_and_names_unique(meters):
    errors = rejected(
        import_releases,
        csv_file(RELEASES_HEADER, "Nov 3 2026,Chat 2,,", "2026-11-03,Chat 2,,"),
    )

    assert errors == [
        {"line": 2, "column": "date", "reason": "'Nov 3 2026' is not a date in YYYY-MM-DD form"},
        {"line": 3, "column": "name", "reason": "'Chat 2' appears twice (first on line 2)"},
    ]


# --- Management commands ----------------------------------------------------------------


def test_import_meters_and_releases_commands_print_the_counts():
    out = io.StringIO()

    call_command("import_meters", str(EXAMPLES / "meters.csv"), stdout=out)
    call_command("import_releases", str(EXAMPLES / "releases.csv"), stdout=out)

    assert out.getvalue().splitlines() == [
        "Meters: 4 created, 0 updated, 0 unchanged.",
        "Releases: 2 created, 0 updated, 0 unchanged.",
    ]


def test_import_releases_command_prints_each_problem_and_fails(tmp_path):
    path = tmp_path / "releases.csv"
    path.write_text(f"{RELEASES_HEADER}\n2026-12-01,Vision,vision-images,\n")
    err = io.StringIO()

    with pytest.raises(CommandError, match=r"^Nothing was imported: 1 problem\(s\)"):
        call_command("import_releases", str(path), stderr=err)

    assert err.getvalue() == "line 2, column meters: unknown meter 'vision-images' (import meters first)\n"
