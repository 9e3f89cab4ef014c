"""The review workflow: open (freeze the snapshot, carry open actions over), fill in, finalize.

Every function validates before it writes and writes in one transaction, so a refused
change leaves nothing behind. Who may do what is checked here as well as in the views
(``can_*``), so the rules hold whatever calls them.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from accounts.access import accounts_visible_to
from accounts.models import Account, Activity
from reviews import labels, snapshot
from reviews.models import (
    MAX_DECISIONS,
    MAX_PATTERNS,
    MIN_DECISIONS,
    MIN_PATTERNS,
    ActionItem,
    ActionStatus,
    ProductDecision,
    Review,
    ReviewStatus,
    SalesPattern,
)
from revops.clock import today_utc
from revops.events import emit
from revops.models import Role, User
from usage.models import DailyRollup, Meter, ProductRelease

EVIDENCE_MONTHS = 6

SALES_ROLES = frozenset({Role.LEADER, Role.ADMIN})
PRODUCT_ROLES = frozenset({Role.PRODUCT, Role.ADMIN})
PREPARE_ROLES = frozenset({Role.LEADER, Role.FINANCE, Role.PRODUCT, Role.ADMIN})
FINALIZE_ROLES = frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN})
OPEN_ROLES = frozenset({Role.LEADER, Role.FINANCE, Role.ADMIN})

logger = logging.getLogger(__name__)


def can_read(user: User, review: Review) -> bool:
    """Drafts are for the people preparing them; a final review is for everyone."""
    return review.is_final or user.role in PREPARE_ROLES


# Release attribution and pilot reports: company-wide analysis, not for a seller's or CSM's book.
ANALYSIS_ROLES = frozenset({Role.LEADER, Role.FINANCE, Role.PRODUCT, Role.ADMIN})


def can_analyse(user: User) -> bool:
    return user.role in ANALYSIS_ROLES


def linkable_accounts(user: User, review: Review, patterns: Sequence[SalesPattern]) -> frozenset[str]:
    """External ids of the accounts a review cites (movers, patterns and their activities)
    that ``user`` may open: the account page's own check (``accounts_visible_to``), in one
    query. The review shows the others as plain text, never a link into a 404."""
    cited = {m["external_id"] for rows in (review.snapshot or {}).get("movers", {}).values() for m in rows}
    for pattern in patterns:
        evidence = pattern.evidence or {}
        cited |= {a["external_id"] for a in evidence.get("accounts", [])}
        cited |= {a["external_id"] for a in evidence.get("activities", []) if a.get("external_id")}
    if not cited:
        return frozenset()
    visible = accounts_visible_to(user, on=timezone.localdate()).filter(external_id__in=cited)
    return frozenset(visible.values_list("external_id", flat=True))


def can_open(user: User) -> bool:
    return user.role in OPEN_ROLES


def can_edit_sales(user: User, review: Review) -> bool:
    return not review.is_final and user.role in SALES_ROLES


def can_edit_product(user: User, review: Review) -> bool:
    return not review.is_final and user.role in PRODUCT_ROLES


def can_edit_actions(user: User, review: Review) -> bool:
    return not review.is_final and user.role in PREPARE_ROLES


def can_finalize(user: User, review: Review) -> bool:
    return not review.is_final and user.role in FINALIZE_ROLES


def _require(allowed: bool) -> None:
    if not allowed:
        raise PermissionDenied


def readable_reviews(user: User):
    reviews = Review.objects.all()
    return reviews if user.role in PREPARE_ROLES else reviews.filter(status=ReviewStatus.FINAL)


# --- Opening -------------------------------------------------------------------------------


def first_of_month(day: dt.date) -> dt.date:
    return day.replace(day=1)


@transaction.atomic
def open_review(month: dt.date, user: User) -> Review:
    """Open the month's review: freeze the snapshot and carry the open actions of the newest
    earlier review over. Refuses future months, a month already opened, and months without metrics."""
    _require(can_open(user))
    month = first_of_month(month)
    if month > first_of_month(today_utc()):
        raise ValidationError({"month": f"{month:%B %Y} has not started yet."})
    if Review.objects.filter(month=month).exists():
        raise ValidationError({"month": f"The {month:%B %Y} review is already open."})
    try:
        as_of, frozen = snapshot.freeze(month)
    except snapshot.SnapshotError as error:
        raise ValidationError({"month": str(error)}) from None
    review = Review.objects.create(month=month, as_of=as_of, snapshot=frozen, opened_by=user)
    carry_over(review)
    return review


def carry_over(review: Review) -> list[ActionItem]:
    """Copy the open actions of the newest earlier review into ``review`` (each at most once)."""
    previous = Review.objects.filter(month__lt=review.month).order_by("-month").first()
    if previous is None:
        return []
    items = [
        ActionItem(
            review=review,
            title=item.title,
            owner_id=item.owner_id,
            owner_name=item.owner_name,
            due_on=item.due_on,
            note=item.note,
            carried_from=item,
            first_raised=item.first_raised,
        )
        for item in previous.actions.filter(status=ActionStatus.OPEN).exclude(carried_to__review=review)
    ]
    return ActionItem.objects.bulk_create(items)


def _editable(review: Review) -> Review:
    """The review locked for this transaction; refused when it is final."""
    locked = Review.objects.select_for_update().get(pk=review.pk)
    if locked.is_final:
        raise ValidationError(f"The {locked.label} review is final and can no longer change.")
    return locked


# --- Sales patterns --------------------------------------------------------------------------


def month_activities(review: Review):
    """Activities a pattern may cite: logged in the month reviewed (or the two weeks after it,
    when the review is usually held)."""
    last = snapshot.month_end(review.month) + dt.timedelta(days=14)
    return Activity.objects.filter(occurred_on__range=(review.month, last)).select_related("account", "person")


def pattern_evidence(accounts: Sequence[Account], activities: Sequence[Activity]) -> dict:
    return {
        "accounts": [
            {"external_id": a.external_id, "name": a.name, "segment": a.get_segment_display()}
            for a in sorted(accounts, key=lambda a: a.name)
        ],
        "activities": [
            {
                "date": act.occurred_on.isoformat(),
                "kind": act.get_kind_display(),
                "account": act.account.name,
                "external_id": act.account.external_id,
                "person": act.person.name,
                "notes": act.notes,
                "tags": list(act.tags),
            }
            for act in sorted(activities, key=lambda a: (a.occurred_on, a.pk))
        ],
    }


@transaction.atomic
def save_pattern(
    review: Review,
    user: User,
    *,
    title: str,
    detail: str,
    activities: Sequence[Activity],
    accounts: Sequence[Account] = (),
    pattern: SalesPattern | None = None,
) -> SalesPattern:
    """Add (or change) a sales pattern. Cites at least one activity; the activities' accounts
    are cited with them. A fourth pattern is refused."""
    _require(can_edit_sales(user, review))
    review = _editable(review)
    if pattern is None and review.patterns.count() >= MAX_PATTERNS:
        raise ValidationError(f"A review has at most {MAX_PATTERNS} sales patterns; edit or remove one instead.")
    if not activities:
        raise ValidationError({"activities": "Cite at least one logged activity behind the pattern."})
    cited = {a.pk: a for a in accounts} | {act.account_id: act.account for act in activities}
    if pattern is None:
        pattern = SalesPattern(review=review, author=user)
    pattern.title, pattern.detail = title, detail
    pattern.evidence = pattern_evidence(list(cited.values()), list(activities))
    pattern.save()
    pattern.accounts.set(cited.values())
    pattern.activities.set(activities)
    return pattern


# --- Product decisions ----------------------------------------------------------------------


def _months_back(as_of: dt.date, months: int) -> dt.date:
    day = as_of.replace(day=1)
    for _ in range(months - 1):
        day = (day - dt.timedelta(days=1)).replace(day=1)
    return day


def usage_evidence(meters: Sequence[Meter], features: Sequence[str], *, as_of: dt.date) -> list[dict]:
    """Monthly revenue and accounts using each chosen meter or feature, for the six months to
    ``as_of`` (two queries). Features group the meters that carry them."""
    first = _months_back(as_of, EVIDENCE_MONTHS)
    months = []
    day = first
    while day <= as_of:
        months.append(day)
        day = (day + dt.timedelta(days=32)).replace(day=1)
    series: list[tuple[str, str, Q]] = [(f"Meter {m.name}", m.key, Q(meter=m)) for m in meters]
    series += [(f"Feature {labels.feature(f)}", f, Q(meter__feature=f)) for f in features]
    out = []
    for label, key, condition in series:
        rows = (
            DailyRollup.objects.filter(condition, day__range=(first, as_of))
            .annotate(month=TruncMonth("day"))
            .values("month")
            .annotate(revenue=Sum("revenue"), accounts=Count("account", distinct=True))
            .order_by("month")
        )
        by_month = {r["month"]: r for r in rows}
        out.append(
            {
                "label": label,
                "key": key,
                "months": [m.isoformat() for m in months],
                "revenue": [
                    str(by_month[m]["revenue"].quantize(Decimal("0.01"))) if m in by_month else "0" for m in months
                ],
                "accounts": [by_month[m]["accounts"] if m in by_month else 0 for m in months],
            }
        )
    return out


def release_evidence(releases: Sequence[ProductRelease], *, window_days: int) -> list[dict]:
    """Each release's attribution (difference in differences), as it was computed on saving."""
    from reviews.attribution import release_attribution

    return [release_attribution(r, window_days=window_days).as_dict() for r in releases]


@transaction.atomic
def save_decision(
    review: Review,
    user: User,
    *,
    title: str,
    rationale: str,
    meters: Sequence[Meter] = (),
    features: Sequence[str] = (),
    releases: Sequence[ProductRelease] = (),
    window_days: int = 28,
    decision: ProductDecision | None = None,
) -> ProductDecision:
    """Add (or change) a roadmap decision with at least one meter, feature or release behind it.
    A third decision is refused."""
    _require(can_edit_product(user, review))
    review = _editable(review)
    if decision is None and review.decisions.count() >= MAX_DECISIONS:
        raise ValidationError(f"A review has at most {MAX_DECISIONS} roadmap decisions; edit or remove one instead.")
    if not (meters or features or releases):
        raise ValidationError("Choose the usage data behind the decision: at least one meter, feature or release.")
    if decision is None:
        decision = ProductDecision(review=review, author=user)
    decision.title, decision.rationale, decision.window_days = title, rationale, window_days
    decision.features = sorted(set(features))
    decision.evidence = {
        "as_of": review.as_of.isoformat(),
        "usage": usage_evidence(meters, decision.features, as_of=review.as_of),
        "releases": release_evidence(releases, window_days=window_days),
    }
    decision.save()
    decision.meters.set(meters)
    decision.releases.set(releases)
    return decision


@transaction.atomic
def remove_item(review: Review, user: User, item: SalesPattern | ProductDecision | ActionItem) -> None:
    allowed = {
        SalesPattern: can_edit_sales,
        ProductDecision: can_edit_product,
        ActionItem: can_edit_actions,
    }[type(item)](user, review)
    _require(allowed)
    _editable(review)
    if isinstance(item, ActionItem) and item.carried_from_id:
        raise ValidationError("A carried-over action cannot be removed; mark it done or dropped instead.")
    item.delete()


# --- Actions -----------------------------------------------------------------------------------


@transaction.atomic
def add_action(review: Review, user: User, *, title: str, owner: User, due_on: dt.date) -> ActionItem:
    _require(can_edit_actions(user, review))
    review = _editable(review)
    action = ActionItem.objects.create(
        review=review, title=title, owner=owner, owner_name=owner.name, due_on=due_on, first_raised=review.month
    )
    if owner.pk != user.pk:
        transaction.on_commit(lambda: _send_action_notice(action.pk, user.pk))
    return action


NOTIFY_ACTION_TASK = "reviews.tasks.notify_action_owner"


def _send_action_notice(action_id: int, by_id: int) -> None:
    """Sent by name once the action commits; a broker that is away costs the email, never the action."""
    from celery import current_app

    from revops.queue import SEND_OPTIONS

    try:
        current_app.send_task(NOTIFY_ACTION_TASK, args=[action_id, by_id], expires=24 * 3600, **SEND_OPTIONS)
    except Exception:
        logger.exception("could not send the notice for action item %s", action_id)


@transaction.atomic
def set_action_status(
    review: Review, user: User, item: ActionItem, *, status: str, note: str | None = None
) -> ActionItem:
    """Set an action's status (and its note, unless ``note`` is None: the note stays)."""
    _require(can_edit_actions(user, review))
    _editable(review)
    if status not in ActionStatus.values:
        raise ValidationError({"status": f"Unknown status {status!r}."})
    item.status = status
    if note is not None:
        item.note = note[:300]
    item.save(update_fields=["status", "note"])
    return item


# --- Finalizing -----------------------------------------------------------------------------------


def finalize_problems(review: Review) -> list[str]:
    """Why the review cannot be finalized yet (empty when it can)."""
    problems = []
    patterns = review.patterns.count()
    decisions = review.decisions.count()
    if not MIN_PATTERNS <= patterns <= MAX_PATTERNS:
        problems.append(
            f"Sales needs {MIN_PATTERNS}–{MAX_PATTERNS} patterns; there {'is' if patterns == 1 else 'are'} {patterns}."
        )
    if not MIN_DECISIONS <= decisions <= MAX_DECISIONS:
        problems.append(
            f"Product needs {MIN_DECISIONS}–{MAX_DECISIONS} roadmap decisions; there {'is' if decisions == 1 else 'are'} {decisions}."
        )
    return problems


@transaction.atomic
def finalize(review: Review, user: User, *, summary: str = "") -> Review:
    """Lock the review: from here on it reads exactly as it is now (with the month's
    forecast, when it froze none on opening and one has been made since)."""
    _require(can_finalize(user, review))
    review = _editable(review)
    problems = finalize_problems(review)
    if problems:
        raise ValidationError(problems)
    review.status = ReviewStatus.FINAL
    review.finalized_by = user
    review.finalized_at = timezone.now()
    review.summary = summary
    # A forecast made for the month after the review was opened (a backfill) is kept with it.
    review.snapshot = snapshot.with_forecast(review.snapshot, review.month)
    review.save(update_fields=["status", "finalized_by", "finalized_at", "summary", "snapshot"])
    emit(
        "review.finalized",
        {
            "review_id": review.pk,
            "month": f"{review.month:%Y-%m}",
            "finalized_by": {"id": user.pk, "name": user.name, "email": user.email},
            "finalized_at": review.finalized_at.isoformat(),
            "summary": summary,
            "sales_patterns": review.patterns.count(),
            "product_decisions": review.decisions.count(),
            "actions": review.actions.count(),
            "link": f"/reviews/{review.month:%Y-%m}/",
        },
    )
    return review


def actions_by_owner(review: Review) -> dict[str, list[ActionItem]]:
    grouped: dict[str, list[ActionItem]] = defaultdict(list)
    for item in review.actions.all():
        grouped[item.owner_name].append(item)
    return dict(grouped)
