"""What a review page shows: the forecast made before the month ended, top movers with
their full amounts, a partial last month marked as such, links only where the reader may
go, and stored evidence of the earlier attribution method read as it was."""

from __future__ import annotations

import datetime as dt
import html
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from accounts.access import ALL_ACCOUNTS_ROLES
from accounts.models import OwnerRole, Ownership
from forecasting.models import AccountForecast, ForecastMethod
from reviews import labels, services
from reviews.models import ProductDecision
from revops.models import Role
from revops.templatetags.fmt import money, money_short
from tests.factories import UserFactory
from usage.signals.services import refresh_metrics

from .test_workflow import NOV, OCT, _client, _fill

OCT_END = dt.date(2026, 10, 31)


def _text(response) -> str:
    body = re.sub(r"<script.*?</script>", " ", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def _forecast(account, as_of: dt.date, next_365: int) -> AccountForecast:
    """One account's forecast: next 365 days ``next_365`` ± 1,000, next 90 days a quarter of
    it, a run rate of $100 a day (so $36,500 carried over 365 days)."""
    value = Decimal(next_365)
    quarter = value / 4
    return AccountForecast.objects.create(
        account=account,
        as_of=as_of,
        method=ForecastMethod.RUN_RATE,
        history_days=60,
        naive_daily=Decimal(100),
        next_90=quarter,
        next_90_lower=quarter - 250,
        next_90_upper=quarter + 250,
        next_180=value / 2,
        next_180_lower=value / 2 - 500,
        next_180_upper=value / 2 + 500,
        next_365=value,
        next_365_lower=value - 1000,
        next_365_upper=value + 1000,
    )


# --- The forecast a review shows -------------------------------------------------------------


def test_a_final_review_shows_the_forecast_made_before_its_month_ended(people, company):
    review = services.open_review(OCT, people["leader"])
    _fill(review, people, company)
    services.finalize(review, people["leader"])
    url = f"/reviews/{OCT:%Y-%m}/"

    page = _text(_client(people["ae"]).get(url))
    assert "No forecast was made on or before 2026-10-31, the month's last day" in page

    # Forecast runs made later for earlier days (a backfill): one before October ended, one after.
    account = company["accounts"][0]
    _forecast(account, dt.date(2026, 10, 20), 48_000)
    _forecast(account, dt.date(2026, 11, 5), 99_000)

    page = _text(_client(people["ae"]).get(url))
    assert "Forecast, next 365 days (made as of 2026-10-20) $48,000 80%: $47.0K–$49.0K" in page
    assert "Forecast, next 90 days $12,000" in page
    assert "Run rate carried forward, 365 days $36,500" in page
    assert "The newest company forecast made on or before 2026-10-31, the month's last day; it was made after" in page
    assert "$99,000" not in page and "No forecast" not in page


def test_opening_freezes_the_newest_forecast_made_by_the_months_last_day(people, company):
    account = company["accounts"][0]
    _forecast(account, dt.date(2026, 10, 20), 48_000)
    _forecast(account, dt.date(2026, 11, 5), 99_000)

    october = services.open_review(OCT, people["leader"])
    refresh_metrics(as_of=dt.date(2026, 11, 10))
    november = services.open_review(NOV, people["leader"])

    assert october.snapshot["forecast"]["as_of"] == "2026-10-20"
    assert october.snapshot["forecast"]["horizons"]["365"]["value"] == "48000.00"
    assert november.snapshot["forecast"]["as_of"] == "2026-11-05"
    page = _text(_client(people["leader"]).get(f"/reviews/{OCT:%Y-%m}/"))
    assert "The newest company forecast made on or before 2026-10-31, the month's last day." in page


def test_finalizing_keeps_a_forecast_made_after_opening(people, company):
    review = services.open_review(OCT, people["leader"])
    assert review.snapshot["forecast"] is None
    _forecast(company["accounts"][0], dt.date(2026, 10, 20), 48_000)
    _fill(review, people, company)

    services.finalize(review, people["leader"])
    review.refresh_from_db()

    assert review.snapshot["forecast"]["as_of"] == "2026-10-20"
    assert review.snapshot["forecast_found_later"] is True
    # A later backfill nearer the month's end does not change a final review.
    _forecast(company["accounts"][0], dt.date(2026, 10, 30), 60_000)
    page = _text(_client(people["csm"]).get(f"/reviews/{OCT:%Y-%m}/"))
    assert "(made as of 2026-10-20) $48,000" in page and "$60,000" not in page


# --- Top movers --------------------------------------------------------------------------------


def test_top_movers_show_their_full_amounts_in_a_column_that_fits(people, company):
    review = services.open_review(OCT, people["leader"])
    body = _client(people["leader"]).get(f"/reviews/{OCT:%Y-%m}/").content.decode()

    movers = review.snapshot["movers"]["up"]
    assert movers
    for mover in movers:
        amount = Decimal(mover["net_new_arr"])
        # "+$118,893", not "$118.9K".
        assert f'<td class="num nowrap amount tone-good">+{money(amount)}</td>' in body
        assert money_short(amount) not in body.split('class="table review-movers movers-up"')[1].split("</table>")[0]
    # The account cell wraps, so a long name and owner list cannot push the amount out.
    css = (Path(settings.BASE_DIR) / "static" / "css" / "app.css").read_text()
    assert ".table.review-movers td:first-child { white-space: normal;" in css


# --- Partial periods -----------------------------------------------------------------------------


def test_a_review_of_a_running_month_marks_its_last_month_partial(people, company):
    refresh_metrics(as_of=dt.date(2026, 11, 10))
    review = services.open_review(NOV, people["leader"])
    services.save_decision(review, people["product"], title="Batch", rationale="r", meters=[company["meter"]])
    client = _client(people["leader"])

    body = client.get(f"/reviews/{NOV:%Y-%m}/").content.decode()
    scripts = re.findall(r'application/json">(.*?)</script>', body, re.S)
    figure = json.loads(next(s for s in scripts if "usage cited" in s))
    # June … November; November has 10 of its 30 days: lighter, hatched and noted.
    assert figure["data"][0]["marker"]["opacity"] == [1, 1, 1, 1, 1, 0.4]
    assert figure["data"][0]["marker"]["pattern"]["shape"][-1] == "/"
    assert figure["layout"]["annotations"] == [
        {
            "x": "2026-11-01",
            "y": 1,
            "xref": "x",
            "yref": "paper",
            "text": "partial: 10 of 30 days",
            "showarrow": False,
            "yanchor": "bottom",
            "font": {"size": 11, "color": "#667085"},
        }
    ]
    assert "The last month's bars are lighter: partial: 10 of 30 days" in _text(client.get(f"/reviews/{NOV:%Y-%m}/"))
    assert "2026-11 partial: 10 of 30 days" in _text(client.get(f"/reviews/{NOV:%Y-%m}/print/"))

    # A month reviewed after its end has no partial month.
    october = services.open_review(OCT, people["leader"])
    services.save_decision(october, people["product"], title="Batch", rationale="r", meters=[company["meter"]])
    assert "partial" not in client.get(f"/reviews/{OCT:%Y-%m}/").content.decode()


# --- Links ------------------------------------------------------------------------------------------


def _links(client, url: str) -> set[str]:
    body = client.get(url).content.decode()
    return {h for h in re.findall(r'href="([^"#]+)', body) if not h.startswith("/static/")}


def test_review_links_go_only_where_the_reader_may_go(people, company):
    # ACC-3 passed to another seller in November: today the AE may no longer open it.
    other = UserFactory(role=Role.AE, name="Other Seller")
    acc3 = company["accounts"][2]
    Ownership.objects.filter(account=acc3).update(end_on=dt.date(2026, 11, 30))
    Ownership.objects.create(account=acc3, person=other, role=OwnerRole.LAND_AE, start_on=dt.date(2026, 12, 1))
    review = services.open_review(OCT, people["leader"])
    _fill(review, people, company, patterns=3, decisions=0)
    services.save_decision(review, people["product"], title="d", rationale="r", releases=[company["release"]])
    services.finalize(review, people["leader"])
    month = f"{OCT:%Y-%m}"
    release_link = f"/reviews/analysis/releases/{company['release'].pk}/?window=28"

    seen = {}
    for role in ("leader", "product", "finance", "ae", "csm"):
        client = _client(people[role])
        links = _links(client, f"/reviews/{month}/") | _links(client, f"/reviews/{month}/print/")
        seen[role] = links
        for link in sorted(links):
            assert client.get(link).status_code < 400, (role, link)

    accounts = {f"/accounts/{a.external_id}/" for a in company["accounts"]}
    assert accounts <= seen["leader"] and accounts <= seen["product"]
    assert accounts & seen["ae"] == {"/accounts/ACC-1/", "/accounts/ACC-2/"}
    assert not accounts & seen["csm"]
    for role in ("leader", "product", "finance"):
        assert release_link in seen[role] and "/reviews/analysis/releases/" in seen[role]
    for role in ("ae", "csm"):
        assert not {link for link in seen[role] if link.startswith("/reviews/analysis/")}
    # Where there is no link, the name is still there as text.
    page = _text(_client(people["csm"]).get(f"/reviews/{month}/"))
    assert "Account 3 ACC-3" in page and "Batch API" in page


def test_whoever_may_add_a_decision_or_analyse_may_open_what_those_pages_link_to():
    # The decision form links to release attribution; analysis pages link every account.
    assert services.PRODUCT_ROLES <= services.ANALYSIS_ROLES <= ALL_ACCOUNTS_ROLES


# --- Evidence of the earlier method ------------------------------------------------------------------


def test_a_decision_saved_with_the_earlier_method_reads_as_it_was_and_says_so(people, company):
    review = services.open_review(OCT, people["leader"])
    old = {
        "method": "Difference in differences, adopters vs non-adopters …",
        "release": {"id": company["release"].pk, "name": "Batch API", "released_on": "2026-09-15"},
        "window_days": 28,
        "adopters": {"n": 6},
        "non_adopters": {"n": 187},
        "estimate_per_day": "-5.93",
        "estimate_pct": "-0.5300",
        "confidence": "0.90",
        "ci_low_per_day": "-20.10",
        "ci_high_per_day": "8.24",
        "series": [
            {"offset": -1, "day": "2026-09-14", "adopters": "10.00", "non_adopters": "200.00"},
            {"offset": 0, "day": "2026-09-15", "adopters": "24.50", "non_adopters": "221.00"},
        ],
        "caveats": [],
    }
    ProductDecision.objects.create(
        review=review, title="Old", rationale="r", author=people["product"], evidence={"releases": [old]}
    )

    response = _client(people["leader"]).get(f"/reviews/{OCT:%Y-%m}/")
    page = _text(response)

    assert "adopters' revenue changed by −$5.93 per account per day more than non-adopters'" in page
    assert "Computed with the earlier method (absolute dollars against all non-adopters" in page
    assert "Mean daily revenue per account around the release" in response.content.decode()


@pytest.mark.parametrize(
    ("feature", "label"),
    [
        ("api", "API"),
        ("batch-api", "Batch API"),
        ("hybrid-search", "Hybrid search"),
        ("Vector search", "Vector search"),
    ],
)
def test_feature_keys_read_as_labels(feature, label):
    assert labels.feature(feature) == label


def test_the_usage_evidence_names_a_feature_by_its_label(people, company):
    review = services.open_review(OCT, people["leader"])
    decision = services.save_decision(review, people["product"], title="t", rationale="r", features=["api"])
    assert decision.evidence["usage"][0]["label"] == "Feature API"
