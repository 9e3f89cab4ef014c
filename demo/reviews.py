"""Past monthly reviews for the demo company, so the reviews page is never empty.

Each of the ``months`` months before the current one gets a finalized review written the
way a team would: sales patterns drawn from that month's logged conversations (grouped
by their tags), a roadmap decision citing the newest release and its meters with their
attribution, and action items, some done the month after. The current month is left
open as a draft with its carried-over actions. Everything goes through ``services``,
so the demo obeys the same rules as the pages.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from accounts.models import Activity
from reviews import services, snapshot
from reviews.models import ActionStatus, Review
from revops.models import Role, User
from usage.models import ProductRelease

# tag → (pattern title, what was heard); the first matching tag names the pattern.
PATTERNS = (
    (
        "release-adoption",
        "Customers who turned on the new release ask for a pricing review before scaling",
        "Several accounts that adopted the release grew the meter quickly and now want volume pricing "
        "before moving more workloads. Expansion is there if pricing is settled early.",
    ),
    (
        "expansion",
        "Expansion follows a second workload, usually after a QBR",
        "Accounts that expanded this month had a second workload go live first; the commitment followed the "
        "usage, not the other way round. QBRs where the CSM showed the run rate against the commit led to recommits.",
    ),
    (
        "at-risk",
        "Budget reviews and champion changes are the main risk to consumption",
        "Where usage fell, the conversation was about budget freezes or a champion who left. Accounts with a "
        "second sponsor held their run rate.",
    ),
    (
        "stalled-adoption",
        "Adoption stalls after onboarding without a named adoption owner",
        "Accounts that plateaued under 70% burn had no follow-up after onboarding; an adoption program "
        "restarted usage where the CSM ran one.",
    ),
    (
        "new-workload",
        "New workloads come from the data teams, not the original buyer",
        "New usage this month came from teams the land AE never met; CSMs found them through usage by region and workload.",
    ),
)
ACTIONS = (
    ("Draft volume pricing for the newest release's meter", Role.PRODUCT),
    ("Run an adoption program for every plateaued account under 70% burn", Role.CSM),
    ("Add a second sponsor to every enterprise account plan", Role.AE),
    ("Model the credit run-out dates in the quarter forecast", Role.FINANCE),
)


def _month_back(day: dt.date, months: int) -> dt.date:
    day = day.replace(day=1)
    for _ in range(months):
        day = (day - dt.timedelta(days=1)).replace(day=1)
    return day


def _patterns(review: Review) -> list[tuple[str, str, list[Activity]]]:
    """Up to three patterns, each from the month's activities with one tag (four cited each)."""
    by_tag: dict[str, list[Activity]] = defaultdict(list)
    for activity in services.month_activities(review).filter(occurred_on__lte=snapshot.month_end(review.month)):
        for tag in activity.tags:
            by_tag[tag].append(activity)
    chosen = []
    for tag, title, detail in PATTERNS:
        if len(by_tag.get(tag, [])) >= 2:
            chosen.append((title, detail, by_tag[tag][:4]))
        if len(chosen) == 3:
            break
    return chosen


def _decide(review: Review, product: User) -> None:
    """A decision on the newest release with enough adopters to estimate its effect (or, before
    any such release, on the meters carrying most revenue)."""
    from reviews.attribution import release_attribution

    releases = ProductRelease.objects.filter(released_on__lte=snapshot.month_end(review.month)).order_by("-released_on")
    release = next((r for r in releases if release_attribution(r, window_days=28).estimate is not None), None)
    if release is not None:
        services.save_decision(
            review,
            product,
            title=f"Invest in {release.name}: volume pricing and a migration guide",
            rationale=f"Adopters of {release.name} grew faster than comparable non-adopters (see the attribution); "
            "the roadmap puts volume tiers and a migration guide ahead of new features next quarter.",
            meters=list(release.meters.all()),
            releases=[release],
        )
    else:
        from usage.models import Meter

        meters = list(Meter.objects.order_by("key")[:2])
        services.save_decision(
            review,
            product,
            title="Keep the roadmap on the two meters that carry most revenue",
            rationale="Most billable usage runs through these meters; reliability work on them comes first.",
            meters=meters,
        )


def seed_reviews(as_of: dt.date, *, months: int = 3) -> list[Review]:
    """Finalized reviews for the ``months`` months before ``as_of``'s month, then this month's draft."""
    if Review.objects.exists():
        return []
    people = {role: User.objects.filter(role=role, is_active=True).order_by("pk").first() for role in Role.values}
    leader, product = people[Role.LEADER], people[Role.PRODUCT]
    if leader is None or product is None:
        return []
    reviews = []
    for back in range(months, 0, -1):
        month = _month_back(as_of, back)
        if snapshot.snapshot_day(month) is None:
            continue
        review = services.open_review(month, leader)
        # Last month's carried items: the first one got done, the rest stay open.
        for n, item in enumerate(review.actions.order_by("pk")):
            if n == 0:
                services.set_action_status(review, leader, item, status=ActionStatus.DONE, note="Done in the month")
        for title, detail, activities in _patterns(review):
            services.save_pattern(review, leader, title=title, detail=detail, activities=activities)
        _decide(review, product)
        title, role = ACTIONS[back % len(ACTIONS)]
        owner = people.get(role) or leader
        services.add_action(
            review, leader, title=title, owner=owner, due_on=snapshot.month_end(month) + dt.timedelta(days=30)
        )
        if not services.finalize_problems(review):
            review = services.finalize(
                review, leader, summary=f"Reviewed the {month:%B} numbers, patterns and roadmap; actions assigned."
            )
        reviews.append(review)
    current = as_of.replace(day=1)
    if snapshot.snapshot_day(current) is not None and not Review.objects.filter(month=current).exists():
        reviews.append(services.open_review(current, leader))
    return reviews
