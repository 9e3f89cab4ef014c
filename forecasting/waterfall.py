"""The leaders' realization waterfall and the stacked target (docs/metrics.md#forecast-waterfall).

One SQL read (``period_rows``) gives, per account of the chosen set, its run rate at the
start, at the end and a year before the end, and its contracts' figures for the period;
pure functions build the waterfall and the stacked target from those rows.

Rules:

* **Run rate** at a day d = revenue over the 30 days ending d × 365/30 (the shared
  definition, ``usage.signals.metrics.annualized``), each account's own rollups (a division is
  its own account, so nothing counts twice).
* **Churn** = the start run rate of accounts that had one and, at the end, either have
  none or have had every contract end (last ``end_on`` before the end day).
* **New commitments** = committed ARR of contracts signed in [start, end]: in full for a
  new logo's contracts and for add-on contracts; for a renewal/amendment (``amends``
  set) only its increase over the contract it amends (never negative).
* committed = start − churn + new; actual = Σ run rate at the end (churned accounts that
  still consume count in actual, as they earn); **run-rate gap** = committed − actual (not
  the portfolio's realization gap, which compares 365 days of revenue with the commitment).
* **Stacked target** at the end day: mature accounts (land contract start older than
  their segment's ramp window) count their run rate; newer accounts count their committed
  ARR in force (too new to show in run rate). It is compared with the year-over-year
  target: the same accounts' run rate a year before the end × (1 + growth target).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection

from usage.signals.metrics import annualized

RUN_RATE_DAYS = 30
CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
ZERO = Decimal(0)
# Contract.ramp_days' default: the window when a segment's cohorts have not levelled off.
DEFAULT_RAMP_DAYS = 90


@dataclass(frozen=True)
class AccountPeriod:
    account_id: int
    segment: str
    rev_start: Decimal = ZERO  # the 30 days ending on the start day
    rev_end: Decimal = ZERO
    rev_year_ago: Decimal = ZERO  # the 30 days ending a year before the end day
    land_start_on: dt.date | None = None
    land_signed_on: dt.date | None = None
    last_end_on: dt.date | None = None  # of contracts started by the end day
    committed_at_end: Decimal = ZERO
    new_commitment: Decimal = ZERO

    @property
    def run_rate_start(self) -> Decimal:
        return annualized(self.rev_start, RUN_RATE_DAYS)

    @property
    def run_rate_end(self) -> Decimal:
        return annualized(self.rev_end, RUN_RATE_DAYS)

    @property
    def run_rate_year_ago(self) -> Decimal:
        return annualized(self.rev_year_ago, RUN_RATE_DAYS)


PERIOD_SQL = """
WITH acc AS MATERIALIZED (
    SELECT id, segment FROM accounts_account WHERE %(segment)s = '' OR segment = %(segment)s
),
rr AS (
    SELECT r.account_id,
        SUM(r.revenue) FILTER (WHERE r.day > %(start)s - %(n)s AND r.day <= %(start)s) AS rev_start,
        SUM(r.revenue) FILTER (WHERE r.day > %(end)s - %(n)s AND r.day <= %(end)s) AS rev_end,
        SUM(r.revenue) FILTER (WHERE r.day > %(end)s - 365 - %(n)s AND r.day <= %(end)s - 365) AS rev_year_ago
    FROM usage_dailyrollup r JOIN acc ON acc.id = r.account_id
    WHERE (r.day > %(start)s - %(n)s AND r.day <= %(start)s)
       OR (r.day > %(end)s - %(n)s AND r.day <= %(end)s)
       OR (r.day > %(end)s - 365 - %(n)s AND r.day <= %(end)s - 365)
    GROUP BY r.account_id
),
con AS (
    SELECT c.account_id,
        MIN(c.start_on) AS land_start_on,
        MIN(c.signed_on) AS land_signed_on,
        MAX(c.end_on) FILTER (WHERE c.start_on <= %(end)s) AS last_end_on,
        COALESCE(SUM(c.committed_arr) FILTER (WHERE c.start_on <= %(end)s AND c.end_on >= %(end)s), 0)
            AS committed_at_end,
        COALESCE(SUM(CASE WHEN p.id IS NULL THEN c.committed_arr ELSE GREATEST(0, c.committed_arr - p.committed_arr) END)
            FILTER (WHERE c.signed_on >= %(start)s AND c.signed_on <= %(end)s), 0) AS new_commitment
    FROM accounts_contract c JOIN acc ON acc.id = c.account_id
    LEFT JOIN accounts_contract p ON p.id = c.amends_id
    WHERE c.signed_on <= %(end)s
    GROUP BY c.account_id
)
SELECT acc.id, acc.segment, COALESCE(rr.rev_start, 0), COALESCE(rr.rev_end, 0), COALESCE(rr.rev_year_ago, 0),
       con.land_start_on, con.land_signed_on, con.last_end_on,
       COALESCE(con.committed_at_end, 0), COALESCE(con.new_commitment, 0)
FROM acc LEFT JOIN rr ON rr.account_id = acc.id LEFT JOIN con ON con.account_id = acc.id
WHERE rr.account_id IS NOT NULL OR con.account_id IS NOT NULL
ORDER BY acc.id
"""


def period_rows(*, start: dt.date, end: dt.date, segment: str = "") -> list[AccountPeriod]:
    """One row per account of ``segment`` (all when empty) with usage or contracts (one query)."""
    with connection.cursor() as cursor:
        cursor.execute(PERIOD_SQL, {"start": start, "end": end, "segment": segment, "n": RUN_RATE_DAYS})
        rows = cursor.fetchall()
    return [AccountPeriod(*row) for row in rows]


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _growth(value: Decimal, base: Decimal) -> Decimal | None:
    return None if base <= 0 else (value / base - 1).quantize(RATIO, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Waterfall:
    start: dt.date
    end: dt.date
    start_run_rate: Decimal
    churn: Decimal
    new_logo_commitments: Decimal
    expansion_commitments: Decimal  # renewal increases and add-ons of existing logos
    actual: Decimal
    churned_accounts: int
    accounts: int

    @property
    def new_commitments(self) -> Decimal:
        return self.new_logo_commitments + self.expansion_commitments

    @property
    def committed(self) -> Decimal:
        return self.start_run_rate - self.churn + self.new_commitments

    @property
    def run_rate_gap(self) -> Decimal:
        """Committed ARR − the run rate at the end (per year)."""
        return self.committed - self.actual

    @property
    def committed_growth(self) -> Decimal | None:
        return _growth(self.committed, self.start_run_rate)

    @property
    def actual_growth(self) -> Decimal | None:
        return _growth(self.actual, self.start_run_rate)


def _churned(row: AccountPeriod, end: dt.date) -> bool:
    if row.rev_start <= 0:
        return False
    contracts_ended = row.last_end_on is not None and row.last_end_on < end
    return row.rev_end <= 0 or contracts_ended


def waterfall(rows: Sequence[AccountPeriod], *, start: dt.date, end: dt.date) -> Waterfall:
    churned = [r for r in rows if _churned(r, end)]
    new_logo = [r for r in rows if r.land_signed_on is not None and start <= r.land_signed_on <= end]
    new_logo_ids = {r.account_id for r in new_logo}
    return Waterfall(
        start=start,
        end=end,
        start_run_rate=_money(sum((r.run_rate_start for r in rows), ZERO)),
        churn=_money(sum((r.run_rate_start for r in churned), ZERO)),
        new_logo_commitments=_money(sum((r.new_commitment for r in new_logo), ZERO)),
        expansion_commitments=_money(sum((r.new_commitment for r in rows if r.account_id not in new_logo_ids), ZERO)),
        actual=_money(sum((r.run_rate_end for r in rows), ZERO)),
        churned_accounts=len(churned),
        accounts=len(rows),
    )


@dataclass(frozen=True)
class StackedSegment:
    segment: str
    ramp_days: int
    mature_accounts: int
    mature_run_rate: Decimal
    new_accounts: int
    new_commitments: Decimal
    last_year_run_rate: Decimal
    yoy_target: Decimal

    @property
    def stacked(self) -> Decimal:
        return self.mature_run_rate + self.new_commitments

    @property
    def difference(self) -> Decimal:
        """Stacked − year-over-year target: what the bottom-up view adds (or lacks)."""
        return self.stacked - self.yoy_target


def stacked_target(
    rows: Sequence[AccountPeriod],
    *,
    end: dt.date,
    ramp_days: Mapping[str, int | None],
    growth_target: Decimal,
) -> list[StackedSegment]:
    """Per segment (sorted), plus a total row with segment "" last."""
    groups: dict[str, list[AccountPeriod]] = {}
    for r in rows:
        groups.setdefault(r.segment, []).append(r)
    result = []
    for segment, members in sorted(groups.items()):
        window = ramp_days.get(segment) or DEFAULT_RAMP_DAYS
        new = [r for r in members if r.land_start_on is not None and (end - r.land_start_on).days < window]
        new_ids = {r.account_id for r in new}
        mature = [r for r in members if r.account_id not in new_ids]
        last_year = _money(sum((r.run_rate_year_ago for r in members), ZERO))
        result.append(
            StackedSegment(
                segment=segment,
                ramp_days=window,
                mature_accounts=len(mature),
                mature_run_rate=_money(sum((r.run_rate_end for r in mature), ZERO)),
                new_accounts=len(new),
                new_commitments=_money(sum((r.committed_at_end for r in new), ZERO)),
                last_year_run_rate=last_year,
                yoy_target=_money(last_year * (1 + growth_target)),
            )
        )
    if result:
        result.append(
            StackedSegment(
                segment="",
                ramp_days=0,
                mature_accounts=sum(s.mature_accounts for s in result),
                mature_run_rate=sum((s.mature_run_rate for s in result), ZERO),
                new_accounts=sum(s.new_accounts for s in result),
                new_commitments=sum((s.new_commitments for s in result), ZERO),
                last_year_run_rate=sum((s.last_year_run_rate for s in result), ZERO),
                yoy_target=sum((s.yoy_target for s in result), ZERO),
            )
        )
    return result
