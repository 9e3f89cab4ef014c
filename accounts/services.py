"""Writes on an account: logging a conversation and updating the joint account plan."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import Account, AccountPlan, Activity, ActivityKind
from revops.errors import ApplicationError
from revops.idempotency import first_submission

# A call logged late in the evening may carry tomorrow's date in the customer's time zone.
MAX_DAYS_AHEAD = 1
MAX_TAGS = 10
MAX_TAG_LENGTH = 40
# Growth targets are fractions: −100% (lose it all) to +1000%.
GROWTH_TARGET_RANGE = (Decimal("-1"), Decimal("10"))


@transaction.atomic
def activity_log(
    *,
    account: Account,
    person,
    occurred_on: dt.date,
    kind: str,
    notes: str = "",
    tags: Sequence[str] = (),
    today: dt.date | None = None,
    submission: uuid.UUID | None = None,
) -> Activity:
    """Record a customer conversation on ``account`` by ``person`` (always the person logging it).

    ``submission`` is the form's one-time token: the same form sent twice raises
    ``AlreadySubmitted`` and logs nothing the second time."""
    today = today or timezone.localdate()
    if kind not in ActivityKind.values:
        raise ApplicationError(f"Unknown activity kind “{kind}”.", details={"field": "kind"})
    if occurred_on > today + dt.timedelta(days=MAX_DAYS_AHEAD):
        raise ApplicationError("The date cannot be more than 1 day in the future.", details={"field": "occurred_on"})
    clean_tags = list(dict.fromkeys(t.strip().lower() for t in tags if t.strip()))
    if len(clean_tags) > MAX_TAGS:
        raise ApplicationError(f"At most {MAX_TAGS} tags.", details={"field": "tags"})
    if any(len(t) > MAX_TAG_LENGTH for t in clean_tags):
        raise ApplicationError(f"Tags are at most {MAX_TAG_LENGTH} characters each.", details={"field": "tags"})
    first_submission(submission, user=person)
    return Activity.objects.create(
        account=account, person=person, occurred_on=occurred_on, kind=kind, notes=notes.strip(), tags=clean_tags
    )


@transaction.atomic
def account_plan_update(
    *,
    account: Account,
    updated_by,
    usage_baseline: Decimal | None,
    growth_target: Decimal | None,
    expansion_opportunities: str = "",
    value_realization: str = "",
    stakeholders: str = "",
    risks: str = "",
    next_review_on: dt.date | None = None,
) -> AccountPlan:
    """Create or replace the account's plan. Who may call it is the view's check
    (``accounts.selectors.user_can_edit_plan``); this enforces the plan's own rules."""
    if usage_baseline is not None and usage_baseline < 0:
        raise ApplicationError("The usage baseline cannot be negative.", details={"field": "usage_baseline"})
    low, high = GROWTH_TARGET_RANGE
    if growth_target is not None and not low <= growth_target <= high:
        raise ApplicationError("The growth target must be between −100% and 1000%.", details={"field": "growth_target"})
    # Lock the row so two people saving at once do not interleave field by field.
    plan = AccountPlan.objects.select_for_update().filter(account=account).first() or AccountPlan(account=account)
    plan.usage_baseline = usage_baseline
    plan.growth_target = growth_target
    plan.expansion_opportunities = expansion_opportunities.strip()
    plan.value_realization = value_realization.strip()
    plan.stakeholders = stakeholders.strip()
    plan.risks = risks.strip()
    plan.next_review_on = next_review_on
    plan.updated_by = updated_by
    plan.save()
    return plan
