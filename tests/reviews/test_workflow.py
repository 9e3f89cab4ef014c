"""The monthly review workflow: the frozen snapshot, the 2–3 / 1–2 rules, carry-over,
finalizing and the lock, and who may do what (server-side, by URL)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, transaction
from django.test import Client

from accounts.models import Account, Activity
from reviews import services
from reviews.models import ActionItem, ActionStatus, ReviewStatus, SalesPattern
from usage.models import DailyRollup, PortfolioMetrics
from usage.signals.services import refresh_metrics

OCT = dt.date(2026, 10, 1)
NOV = dt.date(2026, 11, 1)


def _fill(review, people, company, *, patterns=2, decisions=1):
    for n in range(patterns):
        services.save_pattern(
            review,
            people["leader"],
            title=f"Pattern {n}",
            detail="Customers ask for batch pricing.",
            activities=[company["activities"][n % 3]],
        )
    for n in range(decisions):
        services.save_decision(
            review,
            people["product"],
            title=f"Decision {n}",
            rationale="Batch API drove usage.",
            meters=[company["meter"]],
        )


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_opening_freezes_the_numbers_and_later_data_does_not_change_them(people, company):
    review = services.open_review(OCT, people["leader"])
    assert review.as_of == dt.date(2026, 10, 31)
    company_row = next(r for r in review.snapshot["metrics"] if r["segment"] == "")
    frozen_run_rate = company_row["run_rate"]
    assert Decimal(frozen_run_rate) == PortfolioMetrics.objects.get(as_of=review.as_of, segment="").run_rate
    assert review.snapshot["definitions"]["run_rate"]["definition"].startswith("Consumed revenue")
    assert {m["external_id"] for m in review.snapshot["movers"]["up"]} <= {a.external_id for a in company["accounts"]}

    # Late usage arrives for October and the metrics of that day are recomputed.
    DailyRollup.objects.filter(day__gte=dt.date(2026, 10, 1)).update(revenue=Decimal(10_000))
    refresh_metrics(as_of=dt.date(2026, 10, 31))
    assert PortfolioMetrics.objects.get(as_of=review.as_of, segment="").run_rate != Decimal(frozen_run_rate)

    review.refresh_from_db()
    assert next(r for r in review.snapshot["metrics"] if r["segment"] == "")["run_rate"] == frozen_run_rate
    page = _client(people["leader"]).get(f"/reviews/{OCT:%Y-%m}/")
    assert page.status_code == 200
    assert "$" in page.content.decode()


@pytest.mark.parametrize(
    ("month", "reason"),
    [
        (dt.date(2027, 1, 1), "has not started yet"),
        (dt.date(2026, 6, 1), "No shared metrics have been computed for June 2026"),
    ],
)
def test_a_review_cannot_be_opened_for_a_future_month_or_one_without_metrics(people, company, month, reason):
    with pytest.raises(ValidationError, match=reason):
        services.open_review(month, people["leader"])


def test_a_month_is_opened_once(people, company):
    services.open_review(OCT, people["leader"])
    with pytest.raises(ValidationError, match="already open"):
        services.open_review(OCT, people["finance"])


def test_two_to_three_patterns_and_one_to_two_decisions(people, company):
    review = services.open_review(OCT, people["leader"])
    _fill(review, people, company, patterns=1, decisions=0)
    assert services.finalize_problems(review) == [
        "Sales needs 2–3 patterns; there is 1.",
        "Product needs 1–2 roadmap decisions; there are 0.",
    ]
    with pytest.raises(ValidationError):
        services.finalize(review, people["leader"])
    review.refresh_from_db()
    assert review.status == ReviewStatus.DRAFT

    _fill(review, people, company, patterns=2, decisions=2)
    with pytest.raises(ValidationError, match="at most 3 sales patterns"):
        services.save_pattern(review, people["leader"], title="4th", detail="x", activities=company["activities"][:1])
    with pytest.raises(ValidationError, match="at most 2 roadmap decisions"):
        services.save_decision(review, people["product"], title="3rd", rationale="x", meters=[company["meter"]])
    assert review.patterns.count() == 3 and review.decisions.count() == 2

    services.finalize(review, people["finance"], summary="Good month.")
    review.refresh_from_db()
    assert review.status == ReviewStatus.FINAL and review.finalized_by == people["finance"]


def test_a_pattern_cites_activities_and_their_accounts_and_a_decision_needs_usage_data(people, company):
    review = services.open_review(OCT, people["leader"])
    with pytest.raises(ValidationError, match="at least one logged activity"):
        services.save_pattern(review, people["leader"], title="t", detail="d", activities=[])
    pattern = services.save_pattern(
        review,
        people["leader"],
        title="Batch pricing",
        detail="d",
        activities=company["activities"][:2],
        accounts=[company["accounts"][2]],
    )
    assert {a["external_id"] for a in pattern.evidence["accounts"]} == {"ACC-1", "ACC-2", "ACC-3"}
    assert [a["notes"] for a in pattern.evidence["activities"]] == ["Call 0", "Call 1"]

    with pytest.raises(ValidationError, match="at least one meter, feature or release"):
        services.save_decision(review, people["product"], title="t", rationale="r")
    decision = services.save_decision(
        review,
        people["product"],
        title="Invest in batch",
        rationale="r",
        features=["api"],
        releases=[company["release"]],
    )
    usage = decision.evidence["usage"][0]
    assert usage["label"] == "Feature API"
    assert usage["months"][-1] == "2026-10-01"
    # October: accounts 1..3 spend 100·i + k for k = 61..91 (days since 2026-08-01).
    october = sum(100 * i + k for i in (1, 2, 3) for k in range(61, 92))
    assert Decimal(usage["revenue"][-1]) == october
    assert decision.evidence["releases"][0]["release"]["name"] == "Batch API"


def test_open_actions_carry_over_and_the_past_review_keeps_its_own(people, company):
    october = services.open_review(OCT, people["leader"])
    done = services.add_action(
        october, people["leader"], title="Price batch", owner=people["product"], due_on=dt.date(2026, 11, 15)
    )
    still_open = services.add_action(
        october, people["finance"], title="Model credits", owner=people["finance"], due_on=dt.date(2026, 11, 30)
    )
    services.set_action_status(october, people["leader"], done, status=ActionStatus.DONE)
    _fill(october, people, company)
    services.finalize(october, people["leader"])

    refresh_metrics(as_of=dt.date(2026, 11, 10))
    november = services.open_review(NOV, people["leader"])
    carried = list(november.actions.all())
    assert [(a.title, a.carried_from_id, a.first_raised) for a in carried] == [("Model credits", still_open.pk, OCT)]

    services.set_action_status(november, people["finance"], carried[0], status=ActionStatus.DONE, note="Shipped")
    still_open.refresh_from_db()
    assert still_open.status == ActionStatus.OPEN  # October reads as it was
    with pytest.raises(ValidationError, match="cannot be removed"):
        services.remove_item(november, people["leader"], carried[0])


def test_a_final_review_is_locked_in_the_services_and_in_the_database(people, company):
    review = services.open_review(OCT, people["leader"])
    _fill(review, people, company)
    services.finalize(review, people["leader"])
    review.refresh_from_db()
    with pytest.raises(PermissionDenied):  # nobody may edit a final review's sections
        services.save_pattern(review, people["leader"], title="late", detail="d", activities=company["activities"][:1])
    pattern = review.patterns.first()
    with pytest.raises(DatabaseError), transaction.atomic():
        SalesPattern.objects.filter(pk=pattern.pk).update(title="rewritten")
    with pytest.raises(DatabaseError), transaction.atomic():
        ActionItem.objects.create(
            review=review, title="x", owner=people["ae"], owner_name="x", due_on=NOV, first_raised=OCT
        )
    with pytest.raises(DatabaseError), transaction.atomic():
        type(review).objects.filter(pk=review.pk).update(summary="rewritten")


def test_a_final_review_reads_as_it_was_after_accounts_and_activities_change(people, company):
    review = services.open_review(OCT, people["leader"])
    _fill(review, people, company)
    services.finalize(review, people["leader"])
    Account.objects.filter(pk=company["accounts"][0].pk).update(name="Renamed Corp")
    Activity.objects.filter(pk=company["activities"][0].pk).delete()
    body = _client(people["ae"]).get(f"/reviews/{OCT:%Y-%m}/").content.decode()
    assert "Account 1" in body and "Call 0" in body and "Renamed Corp" not in body


def test_who_may_do_what(people, company):
    review = services.open_review(OCT, people["leader"])
    url = f"/reviews/{OCT:%Y-%m}"
    activity = company["activities"][0].pk
    pattern = {"title": "t", "detail": "d", "activities": [activity]}
    decision = {"title": "t", "rationale": "r", "meters": [company["meter"].pk], "window_days": 28}

    # A draft is for the people preparing it.
    assert _client(people["ae"]).get(f"{url}/").status_code == 404
    assert _client(people["csm"]).get(f"{url}/print/").status_code == 404
    assert _client(people["product"]).get(f"{url}/").status_code == 200
    # Sales section: leaders; product section: product managers.
    assert _client(people["product"]).post(f"{url}/patterns/new/", pattern).status_code == 403
    assert _client(people["finance"]).post(f"{url}/patterns/new/", pattern).status_code == 403
    assert _client(people["leader"]).post(f"{url}/decisions/new/", decision).status_code == 403
    assert _client(people["leader"]).post(f"{url}/patterns/new/", pattern).status_code == 302
    assert _client(people["leader"]).post(f"{url}/patterns/new/", pattern | {"title": "t2"}).status_code == 302
    assert _client(people["product"]).post(f"{url}/decisions/new/", decision).status_code == 302
    # Opening and finalizing: leaders and finance.
    assert _client(people["product"]).post("/reviews/open/", {"month": "2026-11"}).status_code == 403
    assert _client(people["product"]).post(f"{url}/finalize/").status_code == 403
    assert _client(people["leader"]).post(f"{url}/finalize/", {"summary": "ok"}).status_code == 302
    review.refresh_from_db()
    assert review.is_final
    # A final review is for everyone to read, and for nobody to change.
    assert _client(people["ae"]).get(f"{url}/").status_code == 200
    assert _client(people["csm"]).get(f"{url}/print/").status_code == 200
    assert _client(people["ae"]).post(f"{url}/patterns/new/", pattern).status_code == 403
    assert _client(people["leader"]).post(f"{url}/patterns/new/", pattern).status_code == 403


def test_bad_input_is_explained(people, company):
    leader = _client(people["leader"])
    response = leader.post("/reviews/open/", {"month": "2026-13"})
    assert response.status_code == 400 and "Give the month as YYYY-MM" in response.content.decode()
    services.open_review(OCT, people["leader"])
    response = leader.post(
        f"/reviews/{OCT:%Y-%m}/patterns/new/", {"title": "t", "detail": "d", "extra_accounts": "NOPE-1"}
    )
    body = response.content.decode()
    assert response.status_code == 400
    assert "No account with external id NOPE-1" in body and "This field is required" in body
    assert SalesPattern.objects.count() == 0
    assert leader.get("/reviews/2026-99/").status_code == 404


def test_the_review_page_reads_a_constant_number_of_queries(people, company, django_assert_max_num_queries):
    review = services.open_review(OCT, people["leader"])
    _fill(review, people, company, patterns=3, decisions=2)
    for n in range(6):
        services.add_action(review, people["leader"], title=f"a{n}", owner=people["ae"], due_on=NOV)
    client = _client(people["leader"])
    with django_assert_max_num_queries(14):
        assert client.get(f"/reviews/{OCT:%Y-%m}/").status_code == 200


def test_an_htmx_status_change_swaps_the_row_and_keeps_the_note(people, company):
    review = services.open_review(OCT, people["leader"])
    item = services.add_action(review, people["leader"], title="Price batch", owner=people["ae"], due_on=NOV)
    services.set_action_status(review, people["leader"], item, status=ActionStatus.OPEN, note="Waiting on legal")
    response = _client(people["leader"]).post(
        f"/reviews/{OCT:%Y-%m}/actions/{item.pk}/status/", {"status": "done"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200 and body.strip().startswith(f'<tr id="action-{item.pk}">')
    item.refresh_from_db()
    assert (item.status, item.note) == (ActionStatus.DONE, "Waiting on legal")
    # A refusal is said in the row itself.
    body = (
        _client(people["leader"])
        .post(f"/reviews/{OCT:%Y-%m}/actions/{item.pk}/status/", {"status": "later"}, headers={"HX-Request": "true"})
        .content.decode()
    )
    assert "Choose a status: open, done or dropped." in body


def test_an_action_given_to_someone_else_tells_them_once_it_commits(
    people, company, mailoutbox, django_capture_on_commit_callbacks
):
    from reviews.notifications import notify_action_owner

    october = services.open_review(OCT, people["leader"])
    with django_capture_on_commit_callbacks() as callbacks:
        action = services.add_action(
            october, people["leader"], title="Price batch", owner=people["product"], due_on=dt.date(2026, 11, 15)
        )
        services.add_action(
            october, people["finance"], title="Model credits", owner=people["finance"], due_on=dt.date(2026, 11, 30)
        )
    assert len(callbacks) == 1  # one's own action needs no email

    assert notify_action_owner(action_id=action.pk, by_id=people["leader"].pk) == {"emails": 1, "slack_posts": 0}
    [email] = mailoutbox
    assert email.to == [people["product"].email]
    assert email.subject == (
        f"revops: {people['leader'].name} gave you an action from the {october.label} review (due 2026-11-15)"
    )
    assert "Price batch" in email.body and "/reviews/2026-10/" in email.body
