"""A CSM's running NRR against their CS bonus curve, and the payout it projects.

The CS bonus (``comp.engine.cs_targets``) is paid once a quota period closes, on the NRR of
the book the CSM owns on its last day. Until then nothing is on a statement, so this is
the running figure: the same book rule and the same NRR (``retention_inputs`` +
``portfolio``) as of the last complete day, the same curve. On the period's last day it is
exactly the line the engine writes; before, it is what the line would be if NRR held.

Units: NRR is a fraction (4 dp; pages print it as %), money is dollars (Decimal; the
projection rounded to cents by ``cents`` as the engine does). Each account counts its own
usage only, as in the engine: a parent's figures leave out its divisions, and a division
the CSM owns is in the book as an account of its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from accounts.models import Account, OwnerRole
from comp.engine import ZERO, Owners, _curve, _d, _version_on, cents, quota_periods
from comp.models import Assignment, PlanType, PlanVersion
from comp.periods import add_months, month_end, month_start

MOVERS = 10  # accounts listed each way, growing and shrinking
RATIO = Decimal("0.0001")


@dataclass
class CurvePoint:
    nrr: Decimal
    payout: Decimal  # × target bonus
    amount: Decimal  # target bonus × payout, $
    reached: bool


@dataclass
class Mover:
    account: Account
    now: Decimal  # revenue in the trailing N days, $
    year_ago: Decimal  # the N days ending 365 days earlier, $
    change: Decimal  # now − year_ago, $
    share: Decimal | None  # change ÷ the book's net change (None when that is 0)
    points: Decimal  # change ÷ the book's year-ago revenue: what it adds to NRR


@dataclass
class NrrPoint:
    day: dt.date
    accounts: int  # the book on that day
    nrr: Decimal | None


@dataclass
class CsOutlook:
    assignment: Assignment
    plan: PlanVersion
    period_start: dt.date
    period_end: dt.date
    as_of: dt.date
    book: int  # accounts owned as CSM on as_of
    counted: int  # of them, those with revenue a year ago (NRR's denominator)
    window_days: int
    revenue_now: Decimal  # of the counted accounts, $
    revenue_year_ago: Decimal
    nrr: Decimal | None
    multiplier: Decimal
    target_bonus: Decimal
    projected: Decimal  # target_bonus × multiplier, cents
    curve: list[CurvePoint]
    next_point: CurvePoint | None  # the first point above today's NRR that pays more
    next_revenue_needed: Decimal | None  # more N-day revenue of the counted accounts to reach it, $
    history: list[NrrPoint]  # each month end of the period so far, then as_of
    up: list[Mover]
    down: list[Mover]
    new_accounts: list[Account]  # in the book, no revenue a year ago: not in NRR

    @property
    def days_left(self) -> int:
        return max(0, (self.period_end - self.as_of).days)

    @property
    def final(self) -> bool:
        return self.as_of >= self.period_end

    @property
    def change(self) -> Decimal:
        return self.revenue_now - self.revenue_year_ago


def _book(owners: Owners, person_id: int, day: dt.date) -> list[int]:
    """The engine's book rule: the accounts whose CSM on ``day`` is the person."""
    return sorted(
        account_id
        for (account_id, role) in owners.periods
        if role == OwnerRole.CSM and owners.on(account_id, role, day) == person_id
    )


def _nrr(book: list[int], day: dt.date):
    """The engine's NRR of a book (``comp.engine._cs_period``): one query."""
    from usage.signals.metrics import Thresholds, portfolio, retention_inputs

    inputs = retention_inputs(as_of=day, accounts=book, thresholds=Thresholds())
    rows = [inputs[a] for a in book if a in inputs]
    return inputs, (portfolio(rows, as_of=day, t=Thresholds()).nrr if rows else None)


def _month_ends(start: dt.date, as_of: dt.date) -> list[dt.date]:
    days, month = [], month_start(start)
    while month_end(month) < as_of:
        days.append(month_end(month))
        month = add_months(month, 1)
    return [*days, as_of]


def cs_outlook(person, as_of: dt.date) -> list[CsOutlook]:
    """One outlook per CS assignment of ``person`` in force on ``as_of`` (the last complete
    day), for the quota period holding it. Queries: assignments, versions and ownerships
    once, the book's accounts once, then one NRR read per month end of the period so far
    (≤ 12 for a yearly period), whatever the book's size."""
    from usage.signals.metrics import Thresholds

    assignments = [
        a
        for a in Assignment.objects.filter(person=person, plan__type=PlanType.CS, start_on__lte=as_of)
        .select_related("plan")
        .order_by("start_on", "pk")
        if a.end_on is None or a.end_on >= as_of
    ]
    if not assignments:
        return []
    versions: dict[int, list[PlanVersion]] = {}
    for version in (
        PlanVersion.objects.filter(plan_id__in={a.plan_id for a in assignments})
        .select_related("plan")
        .order_by("effective_from")
    ):
        versions.setdefault(version.plan_id, []).append(version)
    owners = Owners()
    outlooks = []
    for assignment in assignments:
        start, end = quota_periods(assignment, as_of)[-1]
        version = _version_on(versions.get(assignment.plan_id, []), end)  # the engine pays the version on the end
        if version is None:
            continue
        day = min(as_of, end)
        book = _book(owners, person.pk, day)
        inputs, nrr = _nrr(book, day)
        history = []
        for month_day in _month_ends(start, day)[:-1]:
            month_book = _book(owners, person.pk, month_day)
            history.append(NrrPoint(month_day, len(month_book), _nrr(month_book, month_day)[1]))
        history.append(NrrPoint(day, len(book), nrr))
        outlooks.append(
            _outlook(assignment, version, start, end, day, book, inputs, nrr, history, Thresholds().run_rate_days)
        )
    return outlooks


def _outlook(assignment, version, start, end, day, book, inputs, nrr, history, window_days) -> CsOutlook:
    target = _d(version.parameters["target_bonus"])
    multiplier = _curve(nrr, version.parameters["curve"]) if nrr is not None else ZERO
    curve = [
        CurvePoint(
            _d(p["nrr"]),
            _d(p["payout"]),
            cents(target * _d(p["payout"])),
            nrr is not None and nrr >= _d(p["nrr"]),
        )
        for p in version.parameters["curve"]
    ]
    # A flat stretch pays no more: the next point worth reaching is the first that does.
    ahead = [p for p in curve if nrr is not None and p.nrr > nrr and p.payout > multiplier]
    next_point = ahead[0] if ahead else None
    counted = [inputs[a] for a in book if a in inputs and inputs[a].rev_n_year_ago > 0]
    revenue_now = sum((i.rev_n for i in counted), ZERO)
    revenue_year_ago = sum((i.rev_n_year_ago for i in counted), ZERO)
    book_change = revenue_now - revenue_year_ago
    names = Account.objects.in_bulk(book)
    movers = [
        Mover(
            account=names[i.account_id],
            now=i.rev_n,
            year_ago=i.rev_n_year_ago,
            change=i.rev_n - i.rev_n_year_ago,
            share=((i.rev_n - i.rev_n_year_ago) / book_change).quantize(RATIO) if book_change else None,
            points=((i.rev_n - i.rev_n_year_ago) / revenue_year_ago).quantize(RATIO),
        )
        for i in counted
    ]
    movers.sort(key=lambda m: (m.change, m.account.name))
    return CsOutlook(
        assignment=assignment,
        plan=version,
        period_start=start,
        period_end=end,
        as_of=day,
        book=len(book),
        counted=len(counted),
        window_days=window_days,
        revenue_now=revenue_now,
        revenue_year_ago=revenue_year_ago,
        nrr=nrr,
        multiplier=multiplier,
        target_bonus=target,
        projected=cents(target * multiplier),
        curve=curve,
        next_point=next_point,
        next_revenue_needed=cents(next_point.nrr * revenue_year_ago - revenue_now) if next_point else None,
        history=history,
        up=[m for m in reversed(movers) if m.change > 0][:MOVERS],
        down=[m for m in movers if m.change < 0][:MOVERS],
        new_accounts=sorted(
            (names[a] for a in book if not (a in inputs and inputs[a].rev_n_year_ago > 0)), key=lambda a: a.name
        ),
    )


def _label_side(outlook: CsOutlook) -> str:
    """Where today's label goes: inside the plot at either end of the curve."""
    if outlook.nrr >= outlook.curve[-1].nrr:
        return "top left"
    if outlook.nrr <= outlook.curve[0].nrr:
        return "top right"
    return "top center"


def curve_figure(outlook: CsOutlook) -> dict:
    """The bonus curve (bonus in $ against NRR in %) with today's point. Floats are pixel
    positions only; every figure printed on the page comes from the Decimals."""
    xs = [float(p.nrr * 100) for p in outlook.curve]
    ys = [float(p.amount) for p in outlook.curve]
    # Flat beyond the ends: draw a stretch either side so the shape reads as it pays.
    span = (xs[-1] - xs[0]) or 10.0
    reach = [float(outlook.nrr * 100)] if outlook.nrr is not None else []
    left, right = min([xs[0] - span / 4, *reach]), max([xs[-1] + span / 4, *reach])
    data = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Bonus curve",
            "x": [left, *xs, right],
            "y": [ys[0], *ys, ys[-1]],
            "marker": {"size": [0, *([8] * len(xs)), 0]},
            "hovertemplate": "NRR %{x:.1f}% → $%{y:,.2f}<extra></extra>",
        }
    ]
    if outlook.nrr is not None:
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": "Your book now",
                "x": [float(outlook.nrr * 100)],
                "y": [float(outlook.projected)],
                "text": [f"{(outlook.nrr * 100).quantize(Decimal('0.1'))}% → ${outlook.projected:,.2f}"],
                "textposition": _label_side(outlook),
                "marker": {"size": 13, "symbol": "diamond"},
                "hovertemplate": "Now: NRR %{x:.1f}% → $%{y:,.2f}<extra></extra>",
            }
        )
    return {
        "data": data,
        "layout": {
            "height": 300,
            "margin": {"l": 70, "r": 30, "t": 40, "b": 50},
            "showlegend": False,
            "xaxis": {"title": {"text": "NRR of the book (%)"}, "ticksuffix": "%"},
            "yaxis": {"title": {"text": "Bonus ($)"}, "tickprefix": "$", "rangemode": "tozero"},
            "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)",
        },
    }


def has_cs_plan(person, as_of: dt.date) -> bool:
    """Whether ``person`` has a CS assignment in force on ``as_of`` (so an outlook to link to)."""
    from django.db.models import Q

    return Assignment.objects.filter(
        Q(end_on__isnull=True) | Q(end_on__gte=as_of), person=person, plan__type=PlanType.CS, start_on__lte=as_of
    ).exists()
