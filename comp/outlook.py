"""What an AE will be paid, and when, if today's burn holds.

Two views of one projection: the gates ahead of each land deal (``gate_outlook``) and the
next twelve statements (``pay_timeline``). Neither restates the engine's rules. A
``ProjectedRun`` is a comp run through a future day in which every burn after the last
complete day is that day's burn; the engine's own land phase then says what each gate
will pay, hold, release, forfeit or claw back, and the difference from what the ledger
already holds is what is still to come, on the statement it will land on.

Only land deals are projected: their gates turn on burn alone. Expansion commission,
accelerators, SPIFFs and draw recovery depend on growth and earnings that have not
happened, so the timeline says so rather than guessing them.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Sum

from comp.engine import (
    ZERO,
    LandDeal,
    Run,
    _checkpoint_days,
    _clawback_burn,
    _d,
    _money,
    _pct,
    _recheck_until,
    _share_amounts,
    land_deals,
    land_targets,
)
from comp.models import LedgerLine
from comp.periods import add_months, month_end, month_start, quarter_start

TIMELINE_MONTHS = 12
# The keys of the money the land phase decides: signature and gated shares, releases of
# held shares and clawbacks (not holds, which pay nothing).
# A plan paid on payment releases a share held for its invoice as ``…:on_payment``; a
# refund clawback is ``land:<deal>:refund:<document>``.
_LAND_PHASE_KEY = re.compile(r"land:\d+:(?:share\d+(?::release)?(?::on_payment)?|clawback|refund:\d+)")
_AWAITING_PAYMENT = ":awaiting_payment"


class ProjectedRun(Run):
    """A run through ``through`` as if every day after ``observed`` burned like ``observed``.

    Contracts not signed by ``observed`` are left out: a deal that does not exist yet
    has no gates to estimate."""

    def __init__(self, *, observed: dt.date, through: dt.date) -> None:
        super().__init__(month_start(through), through)
        self.observed = observed
        self.contracts = [c for c in self.contracts if c.signed_on <= observed]
        self.contract_by_id = {c.pk: c for c in self.contracts}

    def burn(self, points) -> None:
        super().burn((account_id, min(day, self.observed)) for account_id, day in points)

    def burn_on(self, account_id: int, day: dt.date):
        return super().burn_on(account_id, min(day, self.observed))


# What a gate row can say. Decided gates are shown beside the ones still ahead of the same
# deal, so the clawback row's money at stake can be traced to the shares paid.
PAYS = "pays"  # a checkpoint ahead that today's burn clears
WILL_HOLD = "will_hold"  # a checkpoint ahead that today's burn does not clear
RELEASES = "releases"  # held now; today's burn releases it at the next month end
RECHECKED = "rechecked"  # held now; re-checked each month end, forfeited at the end
CLAWBACK = "clawback"  # the clawback ahead (or decided, not yet deducted) takes money back
KEPT = "kept"  # the clawback ahead takes nothing back at today's burn
PAID = "paid"  # decided: the checkpoint cleared
RELEASED = "released"  # decided: a held share was paid
FORFEITED = "forfeited"  # decided: a held share was never paid
CLAWED_BACK = "clawed_back"  # decided and on a statement already
AWAITS_PAYMENT = "awaits_payment"  # earned, held until the invoice billing its day is paid (paid basis)
STATUS_WORDS = {
    PAYS: "pays if burn holds",
    WILL_HOLD: "would be held",
    RELEASES: "released if burn holds",
    RECHECKED: "held · re-checked monthly",
    CLAWBACK: "clawback due",
    KEPT: "no clawback if burn holds",
    PAID: "paid · cleared",
    RELEASED: "released · paid",
    FORFEITED: "forfeited",
    CLAWED_BACK: "clawed back",
    AWAITS_PAYMENT: "waits for payment",
}
PENDING = frozenset({PAYS, WILL_HOLD, RELEASES, RECHECKED, CLAWBACK, KEPT, AWAITS_PAYMENT})
GOOD = frozenset({PAYS, RELEASES, KEPT, PAID, RELEASED})


@dataclass
class Gate:
    key: str  # the engine's key for the money it decides
    account: object
    contract: object
    label: str
    on: dt.date  # the day it is (or was) decided
    status: str
    amount: Decimal  # what the decision pays (+) or takes back (−); 0 when no money moves
    at_stake: Decimal  # the money the gate decides on
    statement: dt.date | None  # the statement month the money lands on
    burn_now: Decimal | None
    burn_needed: Decimal | None
    says: str
    # What the money waits for instead of burn (a plan paid on payment): "invoice in_… paid".
    needs: str = ""

    @property
    def pending(self) -> bool:
        return self.status in PENDING

    @property
    def good(self) -> bool:
        return self.status in GOOD

    @property
    def status_words(self) -> str:
        return STATUS_WORDS[self.status]


@dataclass
class Outlook:
    as_of: dt.date
    gates: list[Gate]
    targets: dict  # the projected run's targets by key (this person's land deals)
    current: dict  # the same keys as of ``as_of``
    deals: list[LandDeal]


def _horizon(deals: list[LandDeal], as_of: dt.date) -> dt.date:
    """The last day anything of these deals can still be decided and deducted, and at least
    the timeline's twelve months."""
    last = month_end(add_months(month_start(as_of), TIMELINE_MONTHS - 1))
    for deal in deals:
        until = _recheck_until(deal)
        # A soft clawback is deducted from the quarter after the one it is decided in.
        last = max(last, month_end(add_months(quarter_start(until), 3)))
    return last


def _next_month_end(day: dt.date) -> dt.date:
    """The first month end after ``day``: when a held share is next re-checked."""
    return month_end(day) if day < month_end(day) else month_end(add_months(day, 1))


def _targets(run: Run, person_id: int) -> dict:
    return {t.key: t for t in run.targets if t.person_id == person_id}


def outlook(*, person, as_of: dt.date) -> Outlook:
    """Project ``person``'s land deals from ``as_of`` (the last complete day) on."""
    current = Run(month_start(as_of), as_of)
    deals = [d for d in land_deals(current) if d.assignment.person_id == person.pk]
    land_targets(current, deals)
    current.burn((d.contract.account_id, as_of) for d in deals)
    projected = ProjectedRun(observed=as_of, through=_horizon(deals, as_of))
    projected_deals = [d for d in land_deals(projected) if d.assignment.person_id == person.pk]
    land_targets(projected, projected_deals)
    now, then = _targets(current, person.pk), _targets(projected, person.pk)
    gates = []
    for deal in deals:
        gates += _deal_gates(deal, as_of, current.burn_on(deal.contract.account_id, as_of), now, then)
    gates.sort(key=lambda g: (g.on, g.account.name, g.label))
    return Outlook(as_of, gates, then, now, deals)


def gate_outlook(*, person, as_of: dt.date) -> list[Gate]:
    """Every gate of each deal that still has one ahead (or a deduction to come)."""
    return outlook(person=person, as_of=as_of).gates


def _deal_gates(deal: LandDeal, as_of: dt.date, point, now: dict, then: dict) -> list[Gate]:
    c, p = deal.contract, deal.params
    amounts = _share_amounts(c.committed_arr * _d(p["base_rate"]), p["schedule"])
    rows = []
    for k, entry in _checkpoint_days(deal):
        key = f"land:{c.pk}:share{k}"
        day = c.start_on + dt.timedelta(days=int(entry["at_day"]))
        floor = _d(entry["burn_floor"])
        label = f"Day-{entry['at_day']} share"
        until = _recheck_until(deal)
        row = {"key": key, "account": c.account, "contract": c, "label": label, "burn_now": point.burn_rate}
        row |= {"burn_needed": floor, "at_stake": amounts[k]}
        if day > as_of:
            if key in then:
                rows.append(
                    Gate(
                        **row,
                        on=day,
                        status=PAYS,
                        amount=then[key].amount,
                        statement=month_start(day),
                        says=f"Burn is {_pct(point.burn_rate)} now, at or above the {_pct(floor)} floor: "
                        f"{_money(amounts[k])} is paid on {day} if it holds.",
                    )
                )
            elif f"{key}{_AWAITING_PAYMENT}" in then or f"{key}:on_payment" in then:
                rows.append(
                    Gate(
                        **row,
                        on=day,
                        status=PAYS,
                        amount=ZERO,
                        statement=None,
                        says=f"Burn is {_pct(point.burn_rate)} now, at or above the {_pct(floor)} floor: "
                        f"{_money(amounts[k])} is earned on {day} if it holds, and paid once the invoice billing "
                        "that day is paid.",
                    )
                )
            elif f"{key}:release" in then:
                released_on = dt.date.fromisoformat(then[f"{key}:release"].inputs["released_on"])
                rows.append(
                    Gate(
                        **row | {"key": f"{key}:release"},
                        on=released_on,
                        status=RELEASES,
                        amount=amounts[k],
                        statement=month_start(released_on),
                        says=f"Held on {day}, then paid at the {released_on} month end.",
                    )
                )
            else:
                rows.append(
                    Gate(
                        **row,
                        on=day,
                        status=WILL_HOLD,
                        amount=ZERO,
                        statement=None,
                        says=f"Burn is {_pct(point.burn_rate)} now, under the {_pct(floor)} floor: "
                        f"{_money(amounts[k])} would be held on {day}, re-checked at each month end and "
                        f"forfeited if burn has not reached {_pct(floor)} by {until}.",
                    )
                )
            continue
        if key in now:
            rows.append(
                Gate(
                    **row,
                    on=day,
                    status=PAID,
                    amount=now[key].amount,
                    statement=month_start(day),
                    says=f"Cleared on {day} (burn {_pct(_d(now[key].inputs['burn_at_checkpoint']))}): "
                    f"{_money(now[key].amount)} paid.",
                )
            )
            continue
        if f"{key}{_AWAITING_PAYMENT}" in now:  # cleared, then held for (or paid on) payment
            paid = now.get(f"{key}:on_payment")
            waits = now[f"{key}{_AWAITING_PAYMENT}"]
            rows.append(
                Gate(
                    **row,
                    on=day,
                    status=PAID,
                    amount=paid.amount if paid else ZERO,
                    statement=paid.home if paid else None,
                    says=f"Cleared on {day} (burn {_pct(_d(waits.inputs['burn_at_checkpoint']))}); "
                    + (
                        f"paid on payment of the invoice: {_money(paid.amount)}."
                        if paid
                        else f"{_money(amounts[k])} waits for payment of {waits.inputs['releases_if'].removesuffix(' is paid')}."
                    ),
                )
            )
            continue
        outcome = now[f"{key}:hold"].inputs["outcome"]
        if outcome == "released" and f"{key}:release" not in now:  # released by burn, held for payment
            waits = now.get(f"{key}:release{_AWAITING_PAYMENT}")
            paid = now.get(f"{key}:release:on_payment")
            decided = paid or waits
            on = dt.date.fromisoformat(decided.inputs["released_on"]) if decided else day
            rows.append(
                Gate(
                    **row | {"key": f"{key}:release"},
                    on=on,
                    status=RELEASED,
                    amount=paid.amount if paid else ZERO,
                    statement=paid.home if paid else None,
                    says=f"Held on {day}, released by burn; "
                    + (
                        f"paid on payment of the invoice: {_money(paid.amount)}."
                        if paid
                        else f"it waits for payment of {waits.inputs['releases_if'].removesuffix(' is paid')}."
                        if waits
                        else "paid."
                    ),
                )
            )
        elif outcome == "released":
            released = now[f"{key}:release"]
            on = dt.date.fromisoformat(released.inputs["released_on"])
            rows.append(
                Gate(
                    **row | {"key": f"{key}:release"},
                    on=on,
                    status=RELEASED,
                    amount=released.amount,
                    statement=month_start(on),
                    says=f"Held on {day}, released on {on}: {_money(released.amount)} paid.",
                )
            )
        elif outcome == "forfeited":
            rows.append(
                Gate(
                    **row,
                    on=until,
                    status=FORFEITED,
                    amount=ZERO,
                    statement=None,
                    says=f"Held on {day}; burn did not reach {_pct(floor)} at a month end by {until}: forfeited.",
                )
            )
        elif f"{key}:release" in then:
            on = dt.date.fromisoformat(then[f"{key}:release"].inputs["released_on"])
            rows.append(
                Gate(
                    **row | {"key": f"{key}:release"},
                    on=on,
                    status=RELEASES,
                    amount=amounts[k],
                    statement=month_start(on),
                    says=f"Held since {day}. Burn is {_pct(point.burn_rate)} now, at or above the "
                    f"{_pct(floor)} floor: {_money(amounts[k])} is released at the {on} month end if it holds.",
                )
            )
        else:
            next_check = _next_month_end(as_of)
            if next_check > until:
                next_check = until
            rows.append(
                Gate(
                    **row,
                    on=next_check,
                    status=RECHECKED,
                    amount=ZERO,
                    statement=None,
                    says=f"Held since {day}: burn is {_pct(point.burn_rate)}, under the {_pct(floor)} floor. "
                    f"Re-checked at each month end (next {next_check}); forfeited if burn has not reached "
                    f"{_pct(floor)} by {until}.",
                )
            )
    clawback = p.get("clawback")
    if clawback:
        rows += _clawback_gate(deal, clawback, as_of, point, now, then)
    rows += _payment_gates(deal, as_of, point, then)
    if not any(row.pending for row in rows):
        return []
    return rows


def _payment_gates(deal: LandDeal, as_of: dt.date, point, then: dict) -> list[Gate]:
    """The shares of a plan paid on payment that are (or will be, at today's burn) earned and
    waiting for their invoice: paid on the statement of the month that invoice is paid."""
    prefix = f"land:{deal.contract.pk}:"
    rows = []
    for key, target in sorted(then.items()):
        if not (key.startswith(prefix) and key.endswith(_AWAITING_PAYMENT)) or target.amount <= 0:
            continue
        invoice = target.inputs["releases_if"].removesuffix(" is paid")
        earned = target.home
        rows.append(
            Gate(
                key=key,
                account=deal.contract.account,
                contract=deal.contract,
                label=f"{_item_label(deal, key.removesuffix(_AWAITING_PAYMENT))} — on payment",
                on=max(as_of, earned),
                status=AWAITS_PAYMENT,
                amount=ZERO,
                at_stake=target.amount,
                statement=None,
                burn_now=point.burn_rate,
                burn_needed=None,
                needs=f"{invoice} paid",
                says=f"Earned {'in' if earned <= month_start(as_of) else 'from'} {earned:%B %Y}; waits for payment "
                f"of {invoice}. {_money(target.amount)} is paid on the statement of the month it is paid.",
            )
        )
    return rows


def _clawback_gate(deal: LandDeal, clawback: dict, as_of: dt.date, point, now: dict, then: dict) -> list[Gate]:
    c = deal.contract
    key = f"land:{c.pk}:clawback"
    day = c.start_on + dt.timedelta(days=int(clawback["at_day"]))
    floor = _d(clawback["burn_floor"])
    soft = clawback.get("mode") == "soft"
    how = "deducted from the next quarter" if soft else "reversed"
    burn = _clawback_burn(point, c)
    label = f"Day-{clawback['at_day']} clawback ({'soft' if soft else 'hard'})"
    row = {"key": key, "account": c.account, "contract": c, "label": label, "burn_now": burn, "burn_needed": floor}
    if key in now:  # decided and on a statement already
        line = now[key]
        return [
            Gate(
                **row,
                on=day,
                status=CLAWED_BACK,
                amount=line.amount,
                at_stake=-line.amount,
                statement=line.home,
                says=f"Burn was {_pct(_d(line.inputs['burn_at_clawback']))} on {day}, under the {_pct(floor)} "
                f"floor: {_money(-line.amount)} {how}.",
            )
        ]
    if key in then:
        line = then[key]
        if day > as_of:
            says = (
                f"Burn is {_pct(burn)} now, under the {_pct(floor)} floor: if it holds, the gated shares "
                f"paid ({_money(-line.amount)}) are {how} on the {line.home:%B %Y} statement."
            )
        else:
            says = (
                f"Burn was {_pct(_d(line.inputs['burn_at_clawback']))} on {day}, under the {_pct(floor)} floor: "
                f"{_money(-line.amount)} is deducted from the {line.home:%B %Y} statement."
            )
        return [
            Gate(
                **row,
                on=day,
                status=CLAWBACK,
                amount=line.amount,
                at_stake=-line.amount,
                statement=line.home,
                says=says,
            )
        ]
    if day <= as_of:
        return []  # decided: nothing was taken back
    gated = sum(
        (
            then[key].amount
            for k, _ in _checkpoint_days(deal)
            for key in (
                f"land:{c.pk}:share{k}",
                f"land:{c.pk}:share{k}:release",
                f"land:{c.pk}:share{k}:on_payment",
                f"land:{c.pk}:share{k}:release:on_payment",
            )
            if key in then
        ),
        ZERO,
    )
    if not gated:
        return []  # no gated share paid by then: nothing to take back
    return [
        Gate(
            **row,
            on=day,
            status=KEPT,
            amount=ZERO,
            at_stake=gated,
            statement=None,
            says=f"Burn is {_pct(burn)} now, at or above the {_pct(floor)} floor: no clawback on {day} if it "
            f"holds, and the {_money(gated)} of gated shares stays paid.",
        )
    ]


# --- The next twelve statements ---------------------------------------------------------------


@dataclass
class TimelineItem:
    account: object
    label: str
    amount: Decimal
    says: str
    gate: Gate | None  # the gate the amount turns on, with the burn it needs


@dataclass
class TimelineMonth:
    month: dt.date
    items: list[TimelineItem] = field(default_factory=list)
    # Gates decided this month that move no money at today's burn but have money at stake.
    decisions: list[Gate] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((item.amount for item in self.items), ZERO)


@dataclass
class Timeline:
    as_of: dt.date
    months: list[TimelineMonth]
    gates: list[Gate]

    @property
    def total(self) -> Decimal:
        return sum((m.total for m in self.months), ZERO)

    @property
    def accounts(self) -> list:
        """The accounts the timeline's money depends on, in the order they first matter."""
        seen: dict[int, object] = {}
        for month in self.months:
            for item in month.items:
                seen.setdefault(item.account.pk, item.account)
        return list(seen.values())


def _item_label(deal: LandDeal, key: str) -> str:
    rest = key.split(":", 2)[2]
    if rest == "clawback":
        return f"Day-{deal.params['clawback']['at_day']} clawback"
    if rest.startswith("refund:"):
        return "Refund clawback"
    index, _, suffix = rest.removeprefix("share").partition(":")
    at_day = int(deal.params["schedule"][int(index)]["at_day"])
    label = "Signature share" if at_day == 0 else f"Day-{at_day} share"
    if suffix.endswith("on_payment"):
        return f"{label} paid on payment"
    return f"{label} released" if suffix == "release" else label


def pay_timeline(*, person, as_of: dt.date, months: int = TIMELINE_MONTHS) -> Timeline:
    """What the next ``months`` statements (this month's included) gain or lose from the
    person's land deals if today's burn holds: the projected targets minus what the ledger
    already holds for them, on the statement each difference lands on (a difference for a
    month already past lands on this month's, as the next run would put it)."""
    projection = outlook(person=person, as_of=as_of)
    first = month_start(as_of)
    timeline = [TimelineMonth(add_months(first, k)) for k in range(months)]
    by_month = {m.month: m for m in timeline}
    deals = {f"land:{d.contract.pk}:": d for d in projection.deals}
    recorded = dict(
        LedgerLine.objects.filter(person=person, key__startswith="land:")
        .values_list("key")
        .annotate(total=Sum("amount"))
        .values_list("key", "total")
    )
    gates = {gate.key: gate for gate in projection.gates}
    for key in sorted(set(projection.targets) | set(recorded)):
        if not _LAND_PHASE_KEY.fullmatch(key):
            continue  # holds pay nothing; accelerators and credit are not projected
        deal = deals.get(key[: key.index(":", 5) + 1])
        if deal is None:
            continue  # not one of the deals projected
        target = projection.targets.get(key)
        delta = (target.amount if target else ZERO) - recorded.get(key, ZERO)
        if not delta:
            continue
        month = max(target.home, first) if target else first
        if month not in by_month:
            continue  # beyond the timeline
        label = _item_label(deal, key)
        says = target.explanation if target else "What this line was for no longer applies; it is reversed."
        gate = gates.get(key) or gates.get(key.removesuffix(":on_payment").removesuffix(":release"))
        by_month[month].items.append(TimelineItem(deal.contract.account, label, delta, says, gate))
    for gate in projection.gates:
        if gate.pending and not gate.amount and month_start(gate.on) in by_month:
            by_month[month_start(gate.on)].decisions.append(gate)
    for month in timeline:
        month.items.sort(key=lambda item: (item.account.name, item.label))
    return Timeline(as_of, timeline, projection.gates)
