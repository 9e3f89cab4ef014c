"""Plan what-if: a draft plan document replayed over the last N complete months, beside
the ledger, writing nothing to it.

A **draft** (``PlanDraft``) is a plan document holding one new version per plan it
changes (no assignments), checked by the importer's own reader (``plans_validate``) and
stored as text. A **replay** (``replay``) of it over a window of complete months:

1. The draft's parameters replace the drafted plan's version on every day of the window
   on which the plan has a version in force: the run gets an in-memory ``PlanVersion``
   (``Run(overrides=…)``); versions in force before the window stay, so a deal signed
   before it keeps the terms it was signed under.
2. Only the people with an assignment on a drafted plan are replayed: no rule that pays
   anyone else reads those plans. Every SPIFF assignment is kept, though: a SPIFF goes to
   the land AE when they are on a SPIFF plan, else to the expand AE, so whether one person
   gets it depends on another's assignments.
3. A ledger in memory starts as those people's lines from comp runs of months before the
   window. For each month in order the engine computes the targets as that month's run
   would (``engine.compute``) and appends the differences with its own rules
   (``engine.differences``); the months approved today that come before the month
   replayed are frozen. The reads that depend on the data alone (burn on a day, a window's
   expansion credit, a book's retention at a quarter end) are computed once for the whole
   replay (``Run(memo=…)``), so twelve months cost far less than twelve runs.
4. **Actual** is every real ledger line of those people landed in the month; **draft**
   is the lines in memory landed in it, plus the real lines no run made (finance's
   adjustments to inquiries), which a plan does not change.

An unchanged draft therefore reproduces the ledger exactly when the usage and contracts
are as they were when the months were run; what differs then is what the next run would
true up anyway.

A **run** (``WhatIfRun``) is the replay as a Celery job, its result kept as JSON with
every amount a Decimal string. **Publishing** a draft imports it with ``plans_import``,
whose rules (a version may not start in a month already computed…) apply unchanged.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal

import yaml
from celery.exceptions import SoftTimeLimitExceeded
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Account
from comp import engine
from comp.models import (
    PAYABLE_KINDS,
    Assignment,
    CompRun,
    LedgerLine,
    LineKind,
    Plan,
    PlanDraft,
    PlanType,
    PlanVersion,
    WhatIfRun,
)
from comp.periods import add_months, approved_periods, month_end, month_start
from comp.plans import MAX_BYTES, PlanReport, PlansRejected, plan_document, plans_import, plans_validate
from revops.clock import today_utc
from revops.errors import ApplicationError
from revops.models import User

logger = logging.getLogger(__name__)

ZERO = Decimal(0)
DEFAULT_MONTHS = 12
MAX_MONTHS = 24
TITLE_MAX = PlanDraft._meta.get_field("title").max_length
RUN_TASK = "comp.tasks.run_whatif"
# A running job that has not reported a month for this long lost its worker.
STALLED_AFTER = dt.timedelta(minutes=20)
TOP_ACCOUNTS = 20
# Months whose expansion windows are read ahead, each on a connection of its own.
LOOK_AHEAD = 2
# Per-person change (draft vs actual, over the window): the distribution's buckets.
BUCKETS = (
    ("down_25", "−25% or more"),
    ("down_10", "−25% to −10%"),
    ("down", "−10% to 0%"),
    ("same", "no change"),
    ("up", "0% to +10%"),
    ("up_10", "+10% to +25%"),
    ("up_25", "+25% or more"),
    ("new", "paid only under the draft"),
)


class DraftRejected(PlansRejected):
    """The draft document was refused; ``report`` lists every problem (path, line, reason)."""


# --- The window -------------------------------------------------------------------------


def window(months: int, *, today: dt.date | None = None) -> list[dt.date]:
    """The last ``months`` complete months before ``today``'s, oldest first."""
    if not 1 <= months <= MAX_MONTHS:
        raise ApplicationError(f"A what-if replays 1 to {MAX_MONTHS} months; {months} is not in that range.")
    last = add_months(month_start(today or today_utc()), -1)
    return [add_months(last, k - months + 1) for k in range(months)]


# --- Drafts ---------------------------------------------------------------------------------


@dataclass
class DraftVersion:
    """One plan version of a draft: the stored plan it changes and its new parameters."""

    plan: Plan
    effective_from: dt.date
    parameters: dict


def draft_check(document: str) -> tuple[PlanReport, list[DraftVersion]]:
    """The importer's checks of every value, then a draft's own rules: plan versions only,
    each of a stored plan (same type), one per plan. Writes nothing."""
    data = document.encode("utf-8", "surrogatepass")
    if "\x00" in document:
        report = PlanReport()
        report.add("", "contains a NUL character (\\x00), which text cannot hold")
        return report, []
    checked = plans_validate(data=data, filename="draft.yaml")
    report, check = checked.report, checked.check
    if check is None:
        return report, []
    if checked.assignments or "assignments" in _top_keys(document):
        check.error("assignments", "a draft holds plan versions only; assignments are imported on the import page")
    if not checked.versions and report.ok:
        check.error("plans", "the draft has no plan version; list one version of a stored plan under plans:")
    stored = {plan.name: plan for plan in Plan.objects.filter(name__in={v.name for v in checked.versions})}
    seen: dict[str, str] = {}
    versions = []
    for version in checked.versions:
        plan = stored.get(version.name)
        if plan is None:
            check.error(
                f"{version.path}.name",
                f'"{version.name}" — no stored plan has this name; a what-if changes a stored plan '
                "(a new plan needs assignments: import it on the import page)",
            )
            continue
        if plan.type != version.type:
            check.error(
                f"{version.path}.type",
                f'"{version.type}" — {plan.name} is a {plan.type} plan; a plan\'s type never changes',
            )
            continue
        if version.name in seen:
            check.error(
                f"{version.path}.name",
                f'"{version.name}" — {seen[version.name]} drafts this plan already; a draft holds one version per plan',
            )
            continue
        seen[version.name] = version.path
        versions.append(DraftVersion(plan, version.effective_from, version.parameters))
    report.errors.sort(key=lambda error: error["line"] or 0)
    return report, versions if report.ok else []


def _top_keys(document: str) -> set[str]:
    try:
        loaded = yaml.safe_load(document)
    except yaml.YAMLError:
        return set()
    return set(loaded) if isinstance(loaded, dict) else set()


def _checked_document(document: str) -> str:
    text = (document or "").replace("\r\n", "\n")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        report = PlanReport()
        report.add("", f"the document is larger than {MAX_BYTES // 1_000_000} MB")
        raise DraftRejected(report)
    report, _ = draft_check(text)
    if not report.ok:
        raise DraftRejected(report)
    return text


def _title(title: str) -> str:
    text = (title or "").strip()
    if not text:
        raise ApplicationError("Give the draft a title, e.g. “Expand at 12%”.")
    if len(text) > TITLE_MAX or "\x00" in text:
        raise ApplicationError(f"Keep the title under {TITLE_MAX} characters of text.")
    return text


def suggested_start(plan: Plan, *, today: dt.date | None = None) -> dt.date:
    """The earliest day a new version of ``plan`` could be published to start on, and not
    before next month: after its latest version and after the last month computed under it."""
    latest = plan.versions.order_by("-effective_from").values_list("effective_from", flat=True).first()
    computed = (
        LedgerLine.objects.filter(plan_version__plan=plan).order_by("-period").values_list("period", flat=True).first()
    )
    candidates = [add_months(month_start(today or today_utc()), 1)]
    if latest is not None:
        candidates.append(add_months(month_start(latest), 1))
    if computed is not None:
        candidates.append(add_months(month_start(computed), 1))
    return max(candidates)


def draft_document(plan: Plan, *, today: dt.date | None = None) -> str:
    """A draft of ``plan`` to edit: its latest version as a document the importer reads,
    starting on ``suggested_start`` (the day it would take effect when published)."""
    versions = plan_document(plan)["plans"]
    if not versions:
        raise ApplicationError(f"{plan.name} has no version to start a draft from.")
    latest = dict(versions[-1])
    latest["type"] = str(plan.type)  # a PlanType member is a str subclass YAML will not write
    latest["effective_from"] = suggested_start(plan, today=today)
    header = (
        f"# A draft of {plan.name} (from v{plan.versions.count()}): change the rates, gates, floors, accelerators\n"
        "# or splits. A what-if applies it on every day of the months it replays; effective_from is the\n"
        "# day the new version starts if you publish it.\n"
    )
    return header + yaml.safe_dump(
        {"plans": [latest]}, sort_keys=False, allow_unicode=True, default_flow_style=None, width=100
    )


@transaction.atomic
def draft_create(*, title: str, document: str, based_on: Plan | None, user: User) -> PlanDraft:
    """A new draft, or ``DraftRejected`` (every problem by line) / ``ApplicationError``."""
    text = _checked_document(document)
    return PlanDraft.objects.create(title=_title(title), document=text, based_on=based_on, created_by=user)


@transaction.atomic
def draft_update(*, draft: PlanDraft, title: str, document: str) -> PlanDraft:
    text = _checked_document(document)
    draft.title = _title(title)
    draft.document = text
    draft.save(update_fields=["title", "document", "updated_at"])
    return draft


def draft_token(draft: PlanDraft) -> str:
    """Names the draft as it was shown: publishing another text than the one read is refused."""
    return f"{draft.updated_at:%Y%m%d%H%M%S%f}"


def draft_publish(*, draft: PlanDraft, token: str, user: User) -> list[PlanVersion]:
    """Import the draft as the next version of its plan(s) through ``plans_import`` (all its
    rules apply); raises ``PlansRejected`` or ``ApplicationError`` having written nothing."""
    if token != draft_token(draft):
        raise ApplicationError("The draft was changed since this page was opened; read it again, then publish.")
    report, versions = draft_check(draft.document)
    if not report.ok:
        raise DraftRejected(report)
    started = timezone.now()
    with transaction.atomic():
        result = plans_import(
            data=draft.document.encode("utf-8"), filename=f"what-if draft {draft.pk}: {draft.title}"[:200], user=user
        )
        if not result.summary.get("versions_created"):
            names = ", ".join(v.plan.name for v in versions)
            raise ApplicationError(
                f"Nothing was published: {names} already has this version stored (same start, same terms)."
            )
        PlanDraft.objects.filter(pk=draft.pk).update(published_at=started, published_by=user)
    return list(
        PlanVersion.objects.filter(plan__in=[v.plan for v in versions], created_at__gte=started)
        .select_related("plan")
        .order_by("plan__name")
    )


# --- The replay -------------------------------------------------------------------------------


@dataclass
class Line:
    """One ledger line as the comparison needs it (real or in memory)."""

    person_id: int
    period: dt.date
    kind: str
    key: str
    account_id: int | None
    amount: Decimal


@dataclass
class Replay:
    """A draft replayed over ``months``: the lines both ways and what was done to get them."""

    months: list[dt.date]
    people: set[int]
    plans: list[dict]
    actual: list[Line]
    draft: list[Line]
    months_not_run: list[dt.date]
    seconds: float = 0.0
    month_seconds: list[float] = field(default_factory=list)


class _ReplayRun(engine.Run):
    """A month's run under the draft, for the people it touches (and every SPIFF assignment:
    see the module doc)."""

    def __init__(self, period: dt.date, *, people: set[int], overrides: dict, memo: dict) -> None:
        super().__init__(period, overrides=overrides, memo=memo)
        self.assignments = [a for a in self.assignments if a.person_id in people or a.plan.type == PlanType.SPIFF]


def _overrides(versions: list[DraftVersion], first_day: dt.date) -> tuple[dict[int, list[PlanVersion]], list[dict]]:
    """Per drafted plan, its versions as the replay sees them: the stored ones in force
    before the window, then the draft from the window's first day (or the plan's first
    version, when it starts later)."""
    stored: dict[int, list[PlanVersion]] = defaultdict(list)
    for version in PlanVersion.objects.filter(plan__in=[v.plan for v in versions]).order_by("effective_from"):
        stored[version.plan_id].append(version)
    overrides, described = {}, []
    for draft in versions:
        own = stored.get(draft.plan.pk, [])
        start = max(first_day, own[0].effective_from) if own else first_day
        kept = [v for v in own if v.effective_from < start]
        replaced = [v for v in own if v.effective_from >= start]
        in_memory = PlanVersion(
            plan=draft.plan,
            version=(own[-1].version if own else 0) + 1,
            effective_from=start,
            parameters=draft.parameters,
            source="what-if draft",
        )
        overrides[draft.plan.pk] = [*kept, in_memory]
        in_force = kept[-1:] + replaced
        described.append(
            {
                "plan_id": draft.plan.pk,
                "plan": draft.plan.name,
                "type": draft.plan.type,
                "from": start.isoformat(),
                "replaces": [f"v{v.version}" for v in in_force],
            }
        )
    return overrides, described


class _Windows(dict):
    """The replay's expansion windows (``engine.expansion_by_beneficiary`` by window), some
    still being read by the look-ahead thread: the engine's ``key in windows`` sees them,
    and reading one waits for it."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: dict[tuple, Future] = {}

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or key in self.pending

    def __getitem__(self, key):
        if not dict.__contains__(self, key) and key in self.pending:
            self[key] = self.pending.pop(key).result()
        return dict.__getitem__(self, key)


def _read_window(key: tuple) -> engine.Expansion:
    try:
        return engine.expansion_by_beneficiary(None, *key)
    finally:
        connection.close()  # this thread's own connection


class _LookAhead:
    """Reads the next months' expansion windows (the heaviest SQL of a month) on other
    connections while this month is computed, so they run on other cores. The same function
    on the same committed data, so the figures are the same; only where nothing
    uncommitted could be missed (not inside a transaction, as in tests)."""

    def __init__(self, memo: dict) -> None:
        self.windows = memo.setdefault("expansion", _Windows())
        self.pool = ThreadPoolExecutor(max_workers=LOOK_AHEAD, thread_name_prefix="whatif-lookahead")

    def ahead(self, run: engine.Run, month: dt.date) -> None:
        """Start reading the windows ``month``'s run will ask for, as ``engine.expand_targets``
        chooses them (a window it does not ask for is only wasted work)."""
        as_of = month_end(month)
        for assignment in run.assignments:
            if assignment.plan.type != PlanType.EXPAND:
                continue
            for start, end in engine.quota_periods(assignment, as_of):
                if end < as_of - dt.timedelta(days=engine.SETTLE_AFTER_DAYS):
                    continue
                window_end = min(end, as_of)
                version = run.version(assignment, min(window_end, assignment.end_on or window_end))
                if version is None:
                    continue
                key = (start, window_end, int(version.parameters.get("credit_split_months", 12)))
                if key not in self.windows:
                    self.windows.pending[key] = self.pool.submit(_read_window, key)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _replay_month(run: engine.Run, people: set[int], approved: dict, existing: dict, kinds: dict) -> list[Line]:
    """One month: its targets under the draft, the differences from the ledger in memory
    (appended to ``existing`` and ``kinds``), as the month's run would append them."""
    month = run.period
    computed = engine.compute(run)
    computed.targets = [t for t in computed.targets if t.person_id in people]
    frozen = {person: {p for p in periods if p < month} for person, periods in approved.items()}
    added = engine.differences(
        month,
        engine.merged_targets(computed),
        existing=existing,
        kinds=kinds,
        frozen=frozen,
        settled=computed.settled,
    )
    engine.recorded(((line.person_id, line.key, line.kind, line.amount) for line in added), existing, kinds)
    return [Line(x.person_id, x.period, x.kind, x.key, x.account_id, x.amount) for x in added]


def replay(
    *,
    versions: list[DraftVersion],
    months: list[dt.date],
    progress: Callable[[int], None] | None = None,
) -> Replay:
    """Replay ``months`` (consecutive, oldest first) under the draft ``versions`` (see the
    module doc). Reads only."""
    started = time.perf_counter()
    first, last = months[0], months[-1]
    overrides, described = _overrides(versions, first)
    people = set(
        Assignment.objects.filter(plan__in=[v.plan for v in versions], start_on__lte=month_end(last)).values_list(
            "person_id", flat=True
        )
    )
    fields = ("person_id", "period", "kind", "key", "account_id", "amount")
    lines = LedgerLine.objects.filter(person_id__in=people)
    # What the ledger held before the window: the lines of the runs of earlier months.
    before = [Line(*row) for row in lines.filter(run__period__lt=first).values_list(*fields)]
    existing, kinds = engine.recorded((line.person_id, line.key, line.kind, line.amount) for line in before)
    in_window = lines.filter(period__gte=first, period__lte=last)
    actual = [Line(*row) for row in in_window.values_list(*fields)]
    not_by_runs = [Line(*row) for row in in_window.filter(run__isnull=True).values_list(*fields)]
    approved = approved_periods(people)
    memo: dict = {}
    look_ahead = None if connection.in_atomic_block else _LookAhead(memo)
    simulated: list[Line] = []
    month_seconds = []
    try:
        for k, month in enumerate(months):
            began = time.perf_counter()
            run = _ReplayRun(month, people=people, overrides=overrides, memo=memo)
            if look_ahead is not None:
                for later in months[k + 1 : k + 1 + LOOK_AHEAD]:
                    look_ahead.ahead(run, later)
            added = _replay_month(run, people, approved, existing, kinds)
            simulated += added
            month_seconds.append(time.perf_counter() - began)
            if progress is not None:
                progress(k + 1)
    finally:
        if look_ahead is not None:
            look_ahead.close()
    draft = [line for line in before + simulated if first <= line.period <= last] + not_by_runs
    run_months = set(
        CompRun.objects.filter(period__gte=first, period__lte=last, finished_at__isnull=False).values_list(
            "period", flat=True
        )
    )
    return Replay(
        months=months,
        people=people,
        plans=described,
        actual=actual,
        draft=draft,
        months_not_run=[m for m in months if m not in run_months],
        seconds=time.perf_counter() - started,
        month_seconds=month_seconds,
    )


# --- The result ------------------------------------------------------------------------------


def _pct(difference: Decimal, base: Decimal) -> str | None:
    """The change as a fraction of ``base`` (0.2 is +20%), 4 places; None without a base."""
    if not base:
        return None
    return str((difference / abs(base)).quantize(Decimal("0.0001")))


def _bucket(actual: Decimal, draft: Decimal) -> str:
    difference = draft - actual
    if not difference:
        return "same"
    if not actual:
        return "new"
    change = difference / abs(actual)
    if change <= Decimal("-0.25"):
        return "down_25"
    if change <= Decimal("-0.10"):
        return "down_10"
    if change < 0:
        return "down"
    if change < Decimal("0.10"):
        return "up"
    if change < Decimal("0.25"):
        return "up_10"
    return "up_25"


def _row(actual: Decimal, draft: Decimal) -> dict:
    return {
        "actual": str(actual),
        "draft": str(draft),
        "difference": str(draft - actual),
        "pct": _pct(draft - actual, actual),
    }


def summarize(result: Replay) -> dict:
    """The stored result: totals, per person, month, kind and account, the distribution.
    Amounts are Decimal strings ($); changes are fractions of the actual as strings, or None."""
    sums: dict[str, dict] = {
        name: defaultdict(lambda: [ZERO, ZERO]) for name in ("person", "month", "kind", "account", "pm", "pk")
    }
    for side, lines in ((0, result.actual), (1, result.draft)):
        for line in lines:
            sums["kind"][line.kind][side] += line.amount
            if line.kind not in PAYABLE_KINDS:
                continue  # a hold records money kept back: it is in no total of pay
            month = f"{line.period:%Y-%m}"
            for name, key in (
                ("person", line.person_id),
                ("month", month),
                ("account", line.account_id),
                ("pm", (line.person_id, month)),
                ("pk", (line.person_id, line.kind)),
            ):
                sums[name][key][side] += line.amount
    people = {
        u.pk: u
        for u in User.objects.filter(pk__in=result.people | set(sums["person"])).only("pk", "name", "email", "role")
    }
    person_rows = []
    counts = dict.fromkeys((key for key, _ in BUCKETS), 0)
    for person_id in sorted(result.people | set(sums["person"])):
        actual, draft = sums["person"].get(person_id, (ZERO, ZERO))
        person = people.get(person_id)
        counts[_bucket(actual, draft)] += 1
        person_rows.append(
            {
                "person_id": person_id,
                "name": person.name if person else f"person {person_id}",
                "email": person.email if person else "",
                "role": person.get_role_display() if person else "",
                **_row(actual, draft),
            }
        )
    person_rows.sort(key=lambda r: (-abs(Decimal(r["difference"])), r["name"]))
    labels = dict(LineKind.choices)
    accounts = {
        a.pk: a
        for a in Account.objects.filter(pk__in=[k for k in sums["account"] if k is not None]).only(
            "pk", "external_id", "name"
        )
    }
    account_rows = []
    for account_id, (actual, draft) in sums["account"].items():
        if account_id is None or draft == actual:
            continue
        account = accounts.get(account_id)
        account_rows.append(
            {
                "account_id": account_id,
                "external_id": account.external_id if account else "",
                "name": account.name if account else f"account {account_id}",
                **_row(actual, draft),
            }
        )
    account_rows.sort(key=lambda r: (-abs(Decimal(r["difference"])), r["name"]))
    unattributed = sums["account"].get(None, (ZERO, ZERO))
    total_actual = sum((line.amount for line in result.actual if line.kind in PAYABLE_KINDS), ZERO)
    total_draft = sum((line.amount for line in result.draft if line.kind in PAYABLE_KINDS), ZERO)
    return {
        "months": [f"{m:%Y-%m}" for m in result.months],
        "months_not_run": [f"{m:%Y-%m}" for m in result.months_not_run],
        "plans": result.plans,
        "totals": _row(total_actual, total_draft),
        "people": person_rows,
        "by_month": [
            {"month": f"{m:%Y-%m}", **_row(*sums["month"].get(f"{m:%Y-%m}", (ZERO, ZERO)))} for m in result.months
        ],
        "person_months": [{"person_id": p, "month": m, **_row(a, d)} for (p, m), (a, d) in sorted(sums["pm"].items())],
        "by_kind": [
            {"kind": kind, "label": labels.get(kind, kind), "paid": kind in PAYABLE_KINDS, **_row(a, d)}
            for kind, (a, d) in sorted(sums["kind"].items(), key=lambda kv: -abs(kv[1][1] - kv[1][0]))
        ],
        "person_kinds": [
            {"person_id": p, "kind": k, "label": labels.get(k, k), **_row(a, d)}
            for (p, k), (a, d) in sorted(sums["pk"].items())
        ],
        "distribution": [{"bucket": key, "label": label, "people": counts[key]} for key, label in BUCKETS],
        "accounts": account_rows[:TOP_ACCOUNTS],
        "accounts_changed": len(account_rows),
        "unattributed": _row(*unattributed),
        "compared": {
            "people": len(result.people),
            "actual_lines": len(result.actual),
            "draft_lines": len(result.draft),
        },
        "seconds": f"{result.seconds:.1f}",
    }


# --- Runs as jobs -----------------------------------------------------------------------------


def whatif_run_create(*, draft: PlanDraft, months: int, user: User, today: dt.date | None = None) -> WhatIfRun:
    """Queue a replay of the draft as it is now over the ``months`` complete months before
    ``today``'s (default: the clock's); the job is sent once the row is committed."""
    report, _ = draft_check(draft.document)
    if not report.ok:
        raise DraftRejected(report)
    span = window(months, today=today)
    with transaction.atomic():
        run = WhatIfRun.objects.create(
            draft=draft,
            document=draft.document,
            months=months,
            first_month=span[0],
            last_month=span[-1],
            created_by=user,
        )
        transaction.on_commit(lambda: _send(run.pk))
    return run


def _send(run_id: int) -> None:
    from celery import current_app

    from revops.queue import SEND_OPTIONS

    try:
        current_app.send_task(RUN_TASK, args=[run_id], expires=6 * 3600, **SEND_OPTIONS)
    except Exception:
        logger.exception("could not send what-if run %s", run_id)
        WhatIfRun.objects.filter(pk=run_id, status=WhatIfRun.Status.QUEUED).update(
            status=WhatIfRun.Status.FAILED,
            error="The job queue did not answer, so the what-if never started. Run it again in a moment.",
            finished_at=timezone.now(),
        )


def whatif_execute(*, run_id: int) -> WhatIfRun | None:
    """Run a queued what-if once: a conditional UPDATE claims it, so a second delivery of the
    task does nothing. The result or the reason it failed is stored on the row."""
    now = timezone.now()
    claimed = WhatIfRun.objects.filter(pk=run_id, status=WhatIfRun.Status.QUEUED).update(
        status=WhatIfRun.Status.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return None
    run = WhatIfRun.objects.select_related("draft").get(pk=run_id)

    def progress(done: int) -> None:
        WhatIfRun.objects.filter(pk=run_id).update(months_done=done, heartbeat_at=timezone.now())

    try:
        report, versions = draft_check(run.document)
        if not report.ok:
            raise ApplicationError("The draft no longer reads as a plan document: " + "; ".join(report.lines()[:3]))
        months = [add_months(run.first_month, k) for k in range(run.months)]
        result = summarize(replay(versions=versions, months=months, progress=progress))
    except Exception as exc:  # whatever went wrong is the run's outcome, said on its page
        logger.exception("what-if run %s failed", run_id)
        if isinstance(exc, ApplicationError):
            reason = exc.message
        elif isinstance(exc, SoftTimeLimitExceeded):
            reason = "The replay took longer than the job's 15 minutes; try fewer months."
        else:
            reason = f"{type(exc).__name__}: {exc}"
        WhatIfRun.objects.filter(pk=run_id).update(
            status=WhatIfRun.Status.FAILED, error=reason[:4000] or type(exc).__name__, finished_at=timezone.now()
        )
    else:
        WhatIfRun.objects.filter(pk=run_id).update(
            status=WhatIfRun.Status.SUCCEEDED, result=result, months_done=run.months, finished_at=timezone.now()
        )
    run.refresh_from_db()
    return run


# --- Reading drafts and runs back ------------------------------------------------------------


def draft_list():
    """Every draft with its plan and its last run (one query)."""
    from django.db.models import OuterRef, Subquery

    last = WhatIfRun.objects.filter(draft=OuterRef("pk")).order_by("-created_at", "-pk")
    return PlanDraft.objects.select_related("based_on", "created_by").annotate(
        last_run_id=Subquery(last.values("pk")[:1]),
        last_run_status=Subquery(last.values("status")[:1]),
        last_run_months=Subquery(last.values("months")[:1]),
        last_run_at=Subquery(last.values("created_at")[:1]),
    )


def draft_runs(draft: PlanDraft, *, limit: int = 10):
    return draft.runs.select_related("created_by").defer("result", "document").order_by("-created_at", "-pk")[:limit]


def run_stalled(run: WhatIfRun, *, now: dt.datetime | None = None) -> bool:
    """A job that is running (or queued) with no sign of life for ``STALLED_AFTER``."""
    if run.status not in (WhatIfRun.Status.QUEUED, WhatIfRun.Status.RUNNING):
        return False
    seen = run.heartbeat_at or run.created_at
    return (now or timezone.now()) - seen > STALLED_AFTER
