"""Forecasts rolled up: an account's hierarchy, a person's book, a team, a segment, the company.

Every stored forecast is an account's *own* revenue (divisions are forecast on their own
rows), so a roll-up is a sum over a set of accounts and never double counts: a scope
resolves to a set of accounts (a parent with its whole subtree; a book with the
divisions of every account owned; a team as the union of its members' books) and the
snapshots of that set as of one day are summed.

An account's own figures include its divisions by default, as every account metric does
(the account page's panel, the forecast page's account rows and the API agree); the
``divisions=exclude`` option shows its own usage only. A scope's totals still sum each
account once on its own rows, so a parent and its divisions in the same scope are never
counted twice; only the per-account rows, each labelled, include divisions.

Intervals. The expected values add exactly. The 80% interval of a sum is not the sum of
the accounts' bounds (that would assume every account misses in the same direction at
once); it is combined assuming the accounts' forecast errors are independent: the
half-widths below and above the forecast add in quadrature,
``Σv ∓ √Σ(v − bound)²``. Correlated shocks (a market-wide slowdown) would make the true
interval wider; the page says so.

Who sees what is decided in ``scope_for`` against ``accounts_visible_to``: company-wide
roles any scope; product managers (who read every account) the company, the segments and
any account; anyone else their own book, the books of the people they manage and
accounts they can see. Everything here reads; nothing writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Max, QuerySet, Sum
from django.db.models.functions import Power, Sqrt
from django.http import Http404

from accounts.access import ALL_ACCOUNTS_ROLES, accounts_visible_to, owned_accounts
from accounts.models import Account, Segment
from forecasting.models import AccountForecast, ForecastMethod, ForecastPoint
from revops.access import people_in_scope, sees_company
from revops.clock import today_utc
from revops.models import Team, User
from revops.params import whole_number
from usage.models import DailyRollup
from usage.signals.metrics import subtree_ids

HORIZONS = (90, 180, 365)
CENT = Decimal("0.01")
ZERO = Decimal(0)


class ScopeKind:
    COMPANY = "company"
    SEGMENT = "segment"
    TEAM = "team"
    BOOK = "book"
    ACCOUNT = "account"
    ALL = (COMPANY, SEGMENT, TEAM, BOOK, ACCOUNT)


class Divisions:
    """Whether an account's figures include its divisions (the default) or its own usage only."""

    INCLUDE = "include"
    EXCLUDE = "exclude"
    ALL = (INCLUDE, EXCLUDE)
    LABELS = {INCLUDE: "incl. divisions", EXCLUDE: "own usage only"}


@dataclass(frozen=True)
class Scope:
    kind: str
    key: str
    label: str
    accounts: QuerySet[Account] = field(repr=False, compare=False)
    root: Account | None = field(default=None, repr=False, compare=False)  # the account of an account scope
    # Per-account figures (an account scope's totals, the account rows) include divisions.
    divisions: bool = True
    has_divisions: bool = field(default=False, compare=False)  # an account scope's root has divisions

    @property
    def scope_query(self) -> str:
        """The query string naming the scope (without the divisions option)."""
        return f"scope={self.kind}&key={self.key}" if self.key else f"scope={self.kind}"

    @property
    def query(self) -> str:
        return self.scope_query if self.divisions else f"{self.scope_query}&divisions={Divisions.EXCLUDE}"

    @property
    def divisions_label(self) -> str:
        return Divisions.LABELS[Divisions.INCLUDE if self.divisions else Divisions.EXCLUDE]

    @property
    def cache_id(self) -> str:
        return f"{self.kind}:{self.key}:{Divisions.INCLUDE if self.divisions else Divisions.EXCLUDE}"


def _cents(value: Decimal | None) -> Decimal:
    return (value or ZERO).quantize(CENT, rounding=ROUND_HALF_UP)


def sees_all_forecasts(user: User) -> bool:
    """Company-wide roles and product managers (who read every account) see the company's
    and the segments' forecasts; teams and books stay with their managers."""
    return sees_company(user) or (user.is_authenticated and user.is_active and user.role in ALL_ACCOUNTS_ROLES)


def default_scope(user: User) -> tuple[str, str]:
    """What the page opens on: the company for those who see it all, else one's own book."""
    if sees_all_forecasts(user):
        return ScopeKind.COMPANY, ""
    return ScopeKind.BOOK, str(user.pk)


def scope_for(user: User, kind: str, key: str, *, on: dt.date, divisions: bool = True) -> Scope:
    """The scope ``kind``/``key`` as ``user`` may see it; 404 when it is outside their reach.

    The accounts are always intersected with what ``user`` can see, so a scope can only
    narrow access, never widen it. ``divisions=False`` makes an account scope the account's
    own usage only (and the scope's account rows own-only too).
    """
    visible = accounts_visible_to(user, on=on)
    if kind == ScopeKind.COMPANY:
        if not sees_all_forecasts(user):
            raise Http404("The company forecast is for leaders, finance and product.")
        return Scope(kind, "", "Company", visible, divisions=divisions)
    if kind == ScopeKind.SEGMENT:
        labels = dict(Segment.choices)
        if key not in labels or not sees_all_forecasts(user):
            raise Http404("No such segment.")
        return Scope(kind, key, f"{labels[key]} segment", visible.filter(segment=key), divisions=divisions)
    if kind == ScopeKind.TEAM:
        team = Team.objects.filter(pk=whole_number(key)).first()
        if team is None or not (sees_company(user) or team.manager_id == user.pk):
            raise Http404("No such team.")
        members = User.objects.filter(team=team)
        accounts = visible.filter(pk__in=owned_accounts(people=members, on=on))
        return Scope(kind, key, f"Team {team.name}", accounts, divisions=divisions)
    if kind == ScopeKind.BOOK:
        person = people_in_scope(user).filter(pk=whole_number(key)).first()
        if person is None:
            raise Http404("No such book.")
        label = "Your book" if person.pk == user.pk else f"{person.name}'s book"
        accounts = visible.filter(pk__in=owned_accounts(people=[person.pk], on=on))
        return Scope(kind, key, label, accounts, divisions=divisions)
    if kind == ScopeKind.ACCOUNT:
        account = visible.filter(external_id=key).first()
        if account is None:
            raise Http404("No such account.")
        ids = subtree_ids([account.pk])
        n = len(ids) - 1
        if not n:
            label = account.name
        elif divisions:
            label = f"{account.name} and its {n} division{'s' if n != 1 else ''}"
        else:
            label = f"{account.name} (own usage only, without its {n} division{'s' if n != 1 else ''})"
        accounts = Account.objects.filter(pk__in=ids if divisions else [account.pk])
        return Scope(kind, key, label, accounts, root=account, divisions=divisions, has_divisions=bool(n))
    raise Http404("No such scope.")


def latest_as_of(accounts: QuerySet[Account] | None = None) -> dt.date | None:
    """The newest day with stored snapshots (of these accounts)."""
    forecasts = AccountForecast.objects.all()
    if accounts is not None:
        forecasts = forecasts.filter(account__in=accounts)
    return forecasts.aggregate(day=Max("as_of"))["day"]


def snapshot_days(limit: int = 60) -> list[dt.date]:
    """Days with stored snapshots, newest first (for the as-of picker)."""
    return list(AccountForecast.objects.order_by("-as_of").values_list("as_of", flat=True).distinct()[:limit])


# --- Horizon totals -------------------------------------------------------------------------


@dataclass(frozen=True)
class Total:
    value: Decimal
    lower: Decimal
    upper: Decimal


@dataclass(frozen=True)
class RolledTotals:
    accounts: int
    run_rate_daily: Decimal  # Σ naive trailing-30-day run rate per day
    totals: dict[int, Total]  # horizon → total
    methods: dict[str, int]

    def run_rate_total(self, horizon: int) -> Decimal:
        """The naive baseline over ``horizon`` days: today's run rate carried forward."""
        return _cents(self.run_rate_daily * horizon)


def _total_aggregates(prefix: str = "") -> dict:
    aggregates = {f"{prefix}run_rate": Sum("naive_daily"), f"{prefix}n": Count("id")}
    for h in HORIZONS:
        v = F(f"next_{h}")
        aggregates[f"{prefix}v{h}"] = Sum(v)
        aggregates[f"{prefix}lo{h}"] = Sqrt(Sum(Power(v - F(f"next_{h}_lower"), 2)))
        aggregates[f"{prefix}hi{h}"] = Sqrt(Sum(Power(F(f"next_{h}_upper") - v, 2)))
    return aggregates


def _totals_from(row: dict, methods: dict[str, int] | None = None) -> RolledTotals:
    totals = {}
    for h in HORIZONS:
        value = _cents(row[f"v{h}"])
        totals[h] = Total(
            value, max(ZERO, _cents(value - (row[f"lo{h}"] or ZERO))), _cents(value + (row[f"hi{h}"] or ZERO))
        )
    return RolledTotals(row["n"] or 0, _cents(row["run_rate"]), totals, methods or {})


def rolled_totals(accounts: QuerySet[Account], *, as_of: dt.date) -> RolledTotals:
    """The scope's 90/180/365-day totals with combined 80% intervals (two queries)."""
    forecasts = AccountForecast.objects.filter(as_of=as_of, account__in=accounts)
    row = forecasts.aggregate(**_total_aggregates())
    methods = dict(forecasts.values_list("method").annotate(n=Count("id")).order_by())
    return _totals_from(row, methods)


@dataclass(frozen=True)
class BreakdownRow:
    kind: str
    key: str
    label: str
    totals: RolledTotals


def breakdown_by_segment(accounts: QuerySet[Account], *, as_of: dt.date) -> list[BreakdownRow]:
    """Segments partition the accounts: these rows add up to the scope."""
    labels = dict(Segment.choices)
    rows = (
        AccountForecast.objects.filter(as_of=as_of, account__in=accounts)
        .values("account__segment")
        .annotate(**_total_aggregates())
        .order_by("account__segment")
    )
    return [
        BreakdownRow(ScopeKind.SEGMENT, r["account__segment"], labels.get(r["account__segment"], "—"), _totals_from(r))
        for r in rows
    ]


BOOKS_SQL = """
    WITH RECURSIVE owned(person_id, account_id) AS (
        SELECT o.person_id, o.account_id FROM accounts_ownership o
        WHERE o.person_id = ANY(%s) AND o.start_on <= %s AND (o.end_on IS NULL OR o.end_on >= %s)
        UNION
        SELECT owned.person_id, a.id FROM accounts_account a JOIN owned ON a.parent_id = owned.account_id
    )
    SELECT b.group_id, COUNT(*), SUM(f.naive_daily), {columns}
    FROM (SELECT DISTINCT {group} AS group_id, owned.account_id FROM owned {join}) b
    JOIN forecasting_accountforecast f ON f.account_id = b.account_id AND f.as_of = %s
    WHERE b.account_id IN ({visible})
    GROUP BY b.group_id
"""
BOOK_COLUMNS = ", ".join(
    f"SUM(f.next_{h}), sqrt(SUM((f.next_{h} - f.next_{h}_lower)^2)), sqrt(SUM((f.next_{h}_upper - f.next_{h})^2))"
    for h in HORIZONS
)


def _books(
    people: Sequence[int], *, group: str, join: str, visible: QuerySet[Account], as_of: dt.date, on: dt.date
) -> dict[int, RolledTotals]:
    """Forecast totals per owner (or per owner's team): one recursive query for all of them."""
    visible_sql, visible_params = visible.values("pk").query.sql_with_params()
    sql = BOOKS_SQL.format(columns=BOOK_COLUMNS, group=group, join=join, visible=visible_sql)
    out = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, [list(people), on, on, as_of, *visible_params])
        for group_id, n, run_rate, *values in cursor.fetchall():
            row = {"n": n, "run_rate": run_rate}
            for i, h in enumerate(HORIZONS):
                row[f"v{h}"], row[f"lo{h}"], row[f"hi{h}"] = values[3 * i : 3 * i + 3]
            out[group_id] = _totals_from(row)
    return out


def breakdown_by_team(user: User, accounts: QuerySet[Account], *, as_of: dt.date, on: dt.date) -> list[BreakdownRow]:
    """Each team's book (its members' accounts). Teams can share accounts (an AE's and a
    CSM's team both count an account they co-own), so these rows need not add up."""
    teams = list(Team.objects.order_by("name"))
    if not sees_company(user):
        teams = [t for t in teams if t.manager_id == user.pk]
    members = list(User.objects.filter(team__in=teams).values_list("pk", flat=True))
    books = _books(
        members,
        group="u.team_id",
        join="JOIN revops_user u ON u.id = owned.person_id",
        visible=accounts,
        as_of=as_of,
        on=on,
    )
    return [BreakdownRow(ScopeKind.TEAM, str(t.pk), t.name, books[t.pk]) for t in teams if t.pk in books]


def breakdown_by_person(
    people: Iterable[User], accounts: QuerySet[Account], *, as_of: dt.date, on: dt.date
) -> list[BreakdownRow]:
    """Each person's book within the scope (co-owned accounts appear in each owner's row)."""
    people = list(people)
    books = _books([p.pk for p in people], group="owned.person_id", join="", visible=accounts, as_of=as_of, on=on)
    rows = [BreakdownRow(ScopeKind.BOOK, str(p.pk), p.name, books[p.pk]) for p in people if p.pk in books]
    return sorted(rows, key=lambda r: -r.totals.totals[90].value)


# --- The fan: points summed by day --------------------------------------------------------


@dataclass(frozen=True)
class RolledPoint:
    day: dt.date
    days: int  # 1, or a 7-day (or shorter, at the end) sum
    value: Decimal
    lower: Decimal
    upper: Decimal

    def per_day(self) -> tuple[float, float, float]:
        """Value and bounds as revenue per day (weekly sums divided by their days), for charts."""
        return float(self.value) / self.days, float(self.lower) / self.days, float(self.upper) / self.days


def rolled_points(accounts: QuerySet[Account], *, as_of: dt.date, until: dt.date | None = None) -> list[RolledPoint]:
    """The scope's forecast path: every stored point (starting by ``until``) summed by day,
    intervals combined in quadrature."""
    points = ForecastPoint.objects.filter(forecast__as_of=as_of, forecast__account__in=accounts)
    if until is not None:
        points = points.filter(day__lte=until)
    rows = (
        points.values("day", "days")
        .annotate(
            v=Sum("value"),
            lo=Sqrt(Sum(Power(F("value") - F("lower"), 2))),
            hi=Sqrt(Sum(Power(F("upper") - F("value"), 2))),
        )
        .order_by("day")
    )
    points = []
    for r in rows:
        value = _cents(r["v"])
        points.append(
            RolledPoint(r["day"], r["days"], value, max(ZERO, _cents(value - r["lo"])), _cents(value + r["hi"]))
        )
    return points


def actual_daily(accounts: QuerySet[Account], *, first: dt.date, last: dt.date) -> dict[dt.date, Decimal]:
    """The scope's actual revenue per day (days without usage are absent)."""
    rows = (
        DailyRollup.objects.filter(account__in=accounts, day__range=(first, last))
        .values("day")
        .annotate(revenue=Sum("revenue"))
        .order_by()
    )
    return {r["day"]: r["revenue"] for r in rows}


# --- Drill-down: one row per account, with its divisions by default -----------------------

ROW_ORDERS = {  # the page's sort keys → SQL over ACCOUNT_ROWS_SQL's columns (never user text)
    "next_90": "r.v90 DESC NULLS LAST",
    "next_365": "r.v365 DESC NULLS LAST",
    "run_rate": "r.run_rate DESC NULLS LAST",
    "account": "a.name",
}

# Each account of the scope with every division below it (or itself only), summed like a
# scope. A division outside the scope still counts in its parent's row, as on the account
# page. The scope is materialized first: inlined, the planner nested-looped a book's
# recursive subquery over the accounts table.
ACCOUNT_ROWS_SQL = """
    WITH RECURSIVE scope(id) AS MATERIALIZED ({scope}),
    subtree(root_id, account_id) AS (
        SELECT s.id, s.id FROM scope s
        UNION  -- not ALL: a (mistaken) cycle in the hierarchy ends instead of looping
        SELECT subtree.root_id, a.id FROM accounts_account a JOIN subtree ON a.parent_id = subtree.account_id
        WHERE %s
    ),
    r AS (
        SELECT subtree.root_id, COUNT(*) AS n, SUM(f.naive_daily) AS run_rate,
               MAX(CASE WHEN f.account_id = subtree.root_id THEN f.method END) AS method,
               {columns}
        FROM subtree JOIN forecasting_accountforecast f ON f.account_id = subtree.account_id AND f.as_of = %s
        GROUP BY subtree.root_id
    )
    {select}
"""
ROW_COLUMNS = ", ".join(
    f"SUM(f.next_{h}) AS v{h}, sqrt(SUM((f.next_{h} - f.next_{h}_lower)^2)) AS lo{h}, "
    f"sqrt(SUM((f.next_{h}_upper - f.next_{h})^2)) AS hi{h}"
    for h in HORIZONS
)
ROW_SELECT = """
    SELECT r.root_id, r.n, r.run_rate, r.method, {values}
    FROM r JOIN accounts_account a ON a.id = r.root_id
    ORDER BY {order}, r.root_id LIMIT %s OFFSET %s
"""
ROW_VALUES = ", ".join(f"r.v{h}, r.lo{h}, r.hi{h}" for h in HORIZONS)


@dataclass(frozen=True)
class AccountRow:
    """An account's forecast as of a day: its own snapshot, or (``divisions``) its subtree's summed."""

    account: Account
    method: str | None  # the account's own snapshot's method; None when only its divisions have one
    accounts: int  # snapshots summed: 1, or 1 + its divisions
    divisions: bool
    totals: RolledTotals

    @property
    def next_90(self) -> Total:
        return self.totals.totals[90]

    @property
    def next_180(self) -> Total:
        return self.totals.totals[180]

    @property
    def next_365(self) -> Total:
        return self.totals.totals[365]

    @property
    def divisions_summed(self) -> int:
        return self.accounts - 1 if self.method else self.accounts

    @property
    def method_label(self) -> str:
        return METHOD_LABELS.get(self.method or "", "—")

    @property
    def method_title(self) -> str:
        return dict(ForecastMethod.choices).get(self.method or "", "No own snapshot: its divisions' only")

    @property
    def change_vs_run_rate(self) -> Decimal | None:
        """The next 365 days against today's run rate carried forward (0.10 = 10% more)."""
        if not self.totals.run_rate_daily:
            return None
        return self.totals.totals[365].value / self.totals.run_rate_total(365) - 1


METHOD_LABELS = {  # short labels for tables; the full ones are ForecastMethod's
    ForecastMethod.ETS: "Smoothing",
    ForecastMethod.RUN_RATE: "Run rate",
    ForecastMethod.COHORT: "Cohort ramp",
    ForecastMethod.NONE: "No usage",
}


class AccountRows:
    """The scope's account rows, sorted and sliced in SQL (a ``Paginator`` pages it: ``count()``
    and slices, one query each, plus one for the page's accounts)."""

    def __init__(
        self,
        accounts: QuerySet[Account],
        *,
        as_of: dt.date,
        order: str,
        divisions: bool,
        scope_key: str | None = None,
    ) -> None:
        if order not in ROW_ORDERS:
            raise ValueError(f"order must be one of {', '.join(ROW_ORDERS)}, not {order!r}")
        self.accounts, self.as_of, self.order, self.divisions = accounts, as_of, order, divisions
        # A scope's cache id: the sums are then kept (see "Cached reads" below), else computed.
        self.scope_key = scope_key
        self._versions: str | None = None

    def _execute(self, select: str, params: Sequence) -> list[tuple]:
        if self.scope_key is None:
            return self._query(select, params)
        if self._versions is None:
            # Snapshots never change, but the hierarchy may (a division moved, an account
            # renamed or removed): the accounts' audit version is in the key with them.
            from forecasting.cache import accounts_version

            stored = AccountForecast.objects.filter(as_of=self.as_of).count()
            self._versions = f"{stored}:{accounts_version()}"
        key = _key("rows", self.scope_key, self.as_of, self._versions, today_utc(), self.divisions, self.order, *params)
        return cache.get_or_set(key, lambda: self._query(select, params), POINTS_TTL_S)

    def _query(self, select: str, params: Sequence) -> list[tuple]:
        scope_sql, scope_params = self.accounts.values("pk").query.sql_with_params()
        sql = ACCOUNT_ROWS_SQL.format(scope=scope_sql, columns=ROW_COLUMNS, select=select)
        with connection.cursor() as cursor:  # placeholders in order: scope, divisions, as_of, select's
            cursor.execute(sql, [*scope_params, self.divisions, self.as_of, *params])
            return cursor.fetchall()

    def count(self) -> int:
        return self._execute("SELECT COUNT(*) FROM r", [])[0][0]

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: slice) -> list[AccountRow]:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError("AccountRows takes slices only")
        start, stop = index.start or 0, index.stop
        limit = None if stop is None else max(0, stop - start)
        rows = self._execute(ROW_SELECT.format(values=ROW_VALUES, order=ROW_ORDERS[self.order]), [limit, start])
        accounts = Account.objects.in_bulk([row[0] for row in rows])
        out = []
        for account_id, n, run_rate, method, *values in rows:
            aggregate = {"n": n, "run_rate": run_rate}
            for i, h in enumerate(HORIZONS):
                aggregate[f"v{h}"], aggregate[f"lo{h}"], aggregate[f"hi{h}"] = values[3 * i : 3 * i + 3]
            out.append(AccountRow(accounts[account_id], method, n, self.divisions, _totals_from(aggregate)))
        return out


def account_rows(
    accounts: QuerySet[Account],
    *,
    as_of: dt.date,
    order: str = "next_90",
    divisions: bool = True,
    scope_key: str | None = None,
) -> AccountRows:
    """Each account of the scope with a snapshot as of ``as_of`` (its own or a division's), for the
    drill-down table: with its divisions summed in (the default) or its own usage only. With a
    ``scope_key`` (``Scope.cache_id``) the count and each page are kept like the fan's sums."""
    return AccountRows(accounts, as_of=as_of, order=order, divisions=divisions, scope_key=scope_key)


# --- Cached reads for the pages -----------------------------------------------------------------
#
# The fan chart sums every stored point of the scope (650,000 rows for 5,000 accounts) and
# the actuals read 120 days of rollups: about 1.3 s and 1.5 s each at that size; the
# accounts table sums every account's subtree before it can sort a page (0.65 s at 20,000). A
# snapshot never changes, so the summed points are cached under the scope, the day and how
# many snapshots that day has (a run still writing makes a new key); the scope's accounts
# come from ownership today, so today is in the key too. Actuals can still change (late
# usage), so they are kept for ten minutes only. ``scope_for`` has already checked access:
# a key names a scope, and the same scope holds the same accounts for everyone who can open it.

POINTS_TTL_S = 24 * 3600
ACTUALS_TTL_S = 10 * 60


def _key(*parts) -> str:
    return "forecasting:" + ":".join(str(p) for p in parts)


def cached(name: str, scope: Scope, as_of: dt.date, *extra, compute):
    """``compute()`` over the snapshots of ``as_of``, kept while they stay as they are."""
    stored = AccountForecast.objects.filter(as_of=as_of).count()
    key = _key(name, scope.cache_id, as_of, stored, today_utc(), *extra)
    return cache.get_or_set(key, compute, POINTS_TTL_S)


def cached_points(scope: Scope, *, as_of: dt.date) -> list[RolledPoint]:
    return cached("points", scope, as_of, compute=lambda: rolled_points(scope.accounts, as_of=as_of))


def cached_actuals(scope: Scope, *, first: dt.date, last: dt.date) -> dict[dt.date, Decimal]:
    key = _key("actuals", scope.cache_id, first, last, today_utc())
    return cache.get_or_set(key, lambda: actual_daily(scope.accounts, first=first, last=last), ACTUALS_TTL_S)
