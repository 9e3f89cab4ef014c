"""The shared metrics: one definition each (docs/metrics.md), as of any date.

Two layers:

* ``account_inputs`` runs one SQL statement that sums daily rollups and contracts into
  per-account inputs (windowed revenue sums, commitments, term dates, the last 63 days
  of revenue) for any set of accounts as of any date. With ``rollup=True`` each
  account's inputs cover its whole hierarchy subtree (a parent rolls up its divisions);
  with ``rollup=False`` only its own rows (used to total a portfolio without counting a
  division twice).
* Pure functions turn inputs into metrics (``derive``), portfolio totals
  (``portfolio``), the health score and the sudden-decline test. They read no clock and
  no database, so tests work every figure out by hand.

Pages, the API, the nightly job and the alert rules all call these; nothing else
computes a metric. Ratios are fractions (0.3333 = 33.33%); money is Decimal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import statistics
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection

CENT = Decimal("0.01")
RATIO = Decimal("0.0001")
ZERO = Decimal(0)
DAYS_PER_YEAR = Decimal(365)
# Days of daily revenue kept per account for the sparkline and the decline baseline:
# 8 baseline weeks + the 7-day detection window.
SERIES_DAYS = 63
DETECTION_DAYS = 7
# Growth is measured over the trailing 90 days ("a quarter") and compounded monthly.
QUARTER_DAYS = 90
CHECKPOINT_DAYS = 90
CLAWBACK_DAYS = 365


@dataclass(frozen=True)
class Thresholds:
    """The tunable numbers behind bands, health and alerts (``AlertSettings`` in the DB)."""

    run_rate_days: int = 30
    expand_band: Decimal = Decimal("0.70")
    escalate_band: Decimal = Decimal("0.40")
    payout_floor: Decimal = Decimal("0.25")
    clawback_floor: Decimal = Decimal("0.40")
    decline_drop: Decimal = Decimal("0.40")
    decline_mad_multiple: Decimal = Decimal("3")
    decline_days: int = 3
    decline_min_daily_revenue: Decimal = Decimal("10")
    plateau_days: int = 28
    plateau_tolerance: Decimal = Decimal("0.05")
    no_usage_days: int = 30
    included_warn: Decimal = Decimal("0.70")
    included_critical: Decimal = Decimal("0.90")
    credits_low_fraction: Decimal = Decimal("0.20")

    @classmethod
    def from_settings(cls, obj) -> Thresholds:
        return cls(**{name: getattr(obj, name) for name in cls.__dataclass_fields__})


# --- Inputs (SQL) -----------------------------------------------------------------------


@dataclass
class Inputs:
    """Sums for one account (or its subtree) as of ``as_of``; see ``INPUTS_SQL``."""

    account_id: int
    as_of: dt.date
    rev_n: Decimal = ZERO  # trailing N days (N = run_rate_days)
    rev_prior_n: Decimal = ZERO  # the N days before those
    rev_90: Decimal = ZERO
    rev_prior_90: Decimal = ZERO
    rev_n_90_ago: Decimal = ZERO  # the N-day window ending 90 days ago
    rev_n_half_plateau_ago: Decimal = ZERO
    rev_n_plateau_ago: Decimal = ZERO
    rev_n_year_ago: Decimal = ZERO
    rev_365: Decimal = ZERO
    consumed_in_term: Decimal = ZERO
    credits_used: Decimal = ZERO
    credits_rev_n: Decimal = ZERO  # trailing N days' revenue of the accounts holding the credits
    first_usage_on: dt.date | None = None
    last_usage_on: dt.date | None = None
    land_on: dt.date | None = None
    term_start: dt.date | None = None
    term_end: dt.date | None = None
    committed_arr: Decimal = ZERO
    # Σ committed ARR × days: to date (pro-rated pacing) and over the whole term.
    commit_day_dollars_to_date: Decimal = ZERO
    commit_day_dollars_term: Decimal = ZERO
    committed_365: Decimal = ZERO  # commitment pro-rated to the trailing 365 days
    credits: Decimal | None = None
    credits_end: dt.date | None = None
    included_units: Decimal | None = None
    included_used: Decimal = ZERO
    meters_active: int = 0
    features_active: int = 0
    workloads: int = 0
    series: list[Decimal] = field(default_factory=list)  # SERIES_DAYS values, oldest first
    # The day usage history is complete from (``usage_history_start``): a contract that
    # started before it has no known TTFBE.
    history_start: dt.date | None = None

    @property
    def ttfbe_days(self) -> int | None:
        """Days from the land contract's start to the first priced usage (0 if usage came first)."""
        if self.land_on is None or self.first_usage_on is None:
            return None
        if self.history_start is None or self.land_on < self.history_start:
            return None
        return max(0, (self.first_usage_on - self.land_on).days)


def usage_history_start(cursor) -> dt.date | None:
    """The first day usage history is complete from: the declared ``complete_from`` when an
    import or an admin declared one (``usage.models.UsageHistory``), else the first day
    stored for any account."""
    cursor.execute(
        "SELECT COALESCE((SELECT complete_from FROM usage_usagehistory WHERE id = 1),"
        " (SELECT MIN(day) FROM usage_dailyrollup))"
    )
    return cursor.fetchone()[0]


INPUTS_SQL = """
WITH RECURSIVE tree(root_id, account_id) AS (
    SELECT id, id FROM accounts_account WHERE %(all)s OR id = ANY(%(roots)s)
    UNION ALL
    SELECT t.root_id, a.id FROM accounts_account a JOIN tree t ON a.parent_id = t.account_id WHERE %(rollup)s
),
members AS MATERIALIZED (SELECT DISTINCT account_id FROM tree),
contracts AS MATERIALIZED (
    SELECT t.root_id, c.account_id, c.start_on, c.end_on, c.committed_arr, c.pricing_model, c.credits,
           c.included_units, c.included_meter
    FROM tree t JOIN accounts_contract c ON c.account_id = t.account_id
    WHERE c.start_on <= %(d)s
),
terms AS (
    SELECT root_id,
        MIN(start_on) AS land_on,
        MIN(start_on) FILTER (WHERE end_on >= %(d)s) AS term_start,
        MAX(end_on) FILTER (WHERE end_on >= %(d)s) AS term_end,
        COALESCE(SUM(committed_arr) FILTER (WHERE end_on >= %(d)s), 0) AS committed_arr,
        COALESCE(SUM(committed_arr * (%(d)s - start_on + 1)) FILTER (WHERE end_on >= %(d)s), 0) AS cdd_to_date,
        COALESCE(SUM(committed_arr * (end_on - start_on + 1)) FILTER (WHERE end_on >= %(d)s), 0) AS cdd_term,
        COALESCE(SUM(committed_arr * GREATEST(0,
            LEAST(end_on, %(d)s) - GREATEST(start_on, %(d)s - 364) + 1)), 0) / 365 AS committed_365,
        SUM(credits) FILTER (WHERE end_on >= %(d)s AND pricing_model = 'credits') AS credits,
        MAX(end_on) FILTER (WHERE end_on >= %(d)s AND pricing_model = 'credits') AS credits_end,
        SUM(included_units) FILTER (WHERE end_on >= %(d)s AND pricing_model = 'hybrid') AS included_units
    FROM contracts GROUP BY root_id
),
daily AS MATERIALIZED (
    {daily}
),
sums AS (
    SELECT t.root_id,
        SUM(x.revenue) FILTER (WHERE x.day > %(d)s - %(n)s) AS rev_n,
        SUM(x.revenue) FILTER (WHERE x.day > %(d)s - 2 * %(n)s AND x.day <= %(d)s - %(n)s) AS rev_prior_n,
        SUM(x.revenue) FILTER (WHERE x.day > %(d)s - 90) AS rev_90,
        SUM(x.revenue) FILTER (WHERE x.day > %(d)s - 180 AND x.day <= %(d)s - 90) AS rev_prior_90,
        SUM(x.revenue) FILTER (WHERE x.day > %(d)s - 90 - %(n)s AND x.day <= %(d)s - 90) AS rev_n_90_ago,
        SUM(x.revenue) FILTER (WHERE x.day > %(d)s - %(half)s - %(n)s AND x.day <= %(d)s - %(half)s)
            AS rev_n_half_plateau_ago,
        SUM(x.revenue) FILTER (WHERE x.day > %(d)s - %(plateau)s - %(n)s AND x.day <= %(d)s - %(plateau)s)
            AS rev_n_plateau_ago,
        SUM(x.revenue) FILTER (WHERE x.day > %(d)s - 365 - %(n)s AND x.day <= %(d)s - 365) AS rev_n_year_ago,
        SUM(x.revenue) FILTER (WHERE x.day > %(d)s - 365) AS rev_365,
        SUM(x.revenue) FILTER (WHERE x.day >= tm.term_start) AS consumed_in_term,
        MIN(x.day) FILTER (WHERE x.revenue > 0) AS first_usage_on,
        MAX(x.day) FILTER (WHERE x.revenue > 0) AS last_usage_on
    FROM tree t
    JOIN daily x ON x.account_id = t.account_id
    LEFT JOIN terms tm ON tm.root_id = t.root_id
    GROUP BY t.root_id
),
recent AS (
    SELECT t.root_id, x.day, SUM(x.revenue) AS revenue
    FROM tree t JOIN daily x ON x.account_id = t.account_id
    WHERE x.day > %(d)s - %(series_days)s
    GROUP BY t.root_id, x.day
),
series AS (
    SELECT roots.root_id, array_agg(COALESCE(recent.revenue, 0) ORDER BY g.day) AS series
    FROM (SELECT DISTINCT root_id FROM tree) roots
    CROSS JOIN generate_series(%(d)s - %(series_days)s + 1, %(d)s, interval '1 day') AS g(day)
    LEFT JOIN recent ON recent.root_id = roots.root_id AND recent.day = g.day::date
    GROUP BY roots.root_id
),
-- Credits and included volume belong to the account that bought them, not its whole subtree.
credit_use AS (
    SELECT c.root_id, SUM(x.revenue) AS credits_used,
           SUM(x.revenue) FILTER (WHERE x.day > %(d)s - %(n)s) AS credits_rev_n
    FROM (
        SELECT root_id, account_id, MIN(start_on) AS start_on FROM contracts
        WHERE pricing_model = 'credits' AND end_on >= %(d)s GROUP BY root_id, account_id
    ) c
    JOIN daily x ON x.account_id = c.account_id AND x.day >= c.start_on
    GROUP BY c.root_id
),
included AS (
    SELECT c.root_id, SUM(r.quantity) AS included_used
    FROM (
        SELECT DISTINCT root_id, account_id, included_meter FROM contracts
        WHERE pricing_model = 'hybrid' AND end_on >= %(d)s AND included_meter <> ''
    ) c
    JOIN usage_meter m ON m.key = c.included_meter
    JOIN usage_dailyrollup r ON r.account_id = c.account_id AND r.meter_id = m.id
        AND r.day >= date_trunc('month', %(d)s::date)::date AND r.day <= %(d)s
    GROUP BY c.root_id
),
adoption AS (
    SELECT t.root_id, COUNT(DISTINCT r.meter_id) AS meters_active,
           COUNT(DISTINCT NULLIF(m.feature, '')) AS features_active
    FROM tree t
    JOIN usage_dailyrollup r ON r.account_id = t.account_id
        AND r.day > %(d)s - 30 AND r.day <= %(d)s AND r.quantity > 0
    JOIN usage_meter m ON m.id = r.meter_id
    GROUP BY t.root_id
),
workloads AS (
    SELECT t.root_id, COUNT(DISTINCT f.value) AS workloads
    FROM tree t JOIN usage_firstseen f ON f.account_id = t.account_id
    WHERE f.kind = 'workload' AND f.first_day <= %(d)s
    GROUP BY t.root_id
)
SELECT series.root_id,
    s.rev_n, s.rev_prior_n, s.rev_90, s.rev_prior_90, s.rev_n_90_ago, s.rev_n_half_plateau_ago,
    s.rev_n_plateau_ago, s.rev_n_year_ago, s.rev_365, s.consumed_in_term, cu.credits_used, cu.credits_rev_n,
    s.first_usage_on, s.last_usage_on,
    tm.land_on, tm.term_start, tm.term_end, tm.committed_arr, tm.cdd_to_date, tm.cdd_term, tm.committed_365,
    tm.credits, tm.credits_end, tm.included_units,
    i.included_used, a.meters_active, a.features_active, w.workloads, series.series
FROM series
LEFT JOIN sums s ON s.root_id = series.root_id
LEFT JOIN terms tm ON tm.root_id = series.root_id
LEFT JOIN credit_use cu ON cu.root_id = series.root_id
LEFT JOIN included i ON i.root_id = series.root_id
LEFT JOIN adoption a ON a.root_id = series.root_id
LEFT JOIN workloads w ON w.root_id = series.root_id
"""

# Revenue per account and day, summed over meters: straight from the rollups (a page or
# the API asking about a few accounts), or from the table ``daily_table`` fills once for
# both passes of a full refresh.
DAILY_FROM_ROLLUPS = """SELECT r.account_id, r.day, SUM(r.revenue) AS revenue
    FROM usage_dailyrollup r
    WHERE r.account_id IN (SELECT account_id FROM members) AND r.day <= %(d)s
    GROUP BY r.account_id, r.day"""
DAILY_FROM_TABLE = "SELECT account_id, day, revenue FROM _metrics_daily"


@contextlib.contextmanager
def daily_table(as_of: dt.date) -> Iterator[None]:
    """Fill a temporary account × day revenue table once (one scan of the rollups) for the
    statements inside; ``account_inputs(..., shared_daily=True)`` reads it. Call inside a
    transaction: the table is dropped on commit."""
    with connection.cursor() as cursor:
        # The aggregate holds millions of account-days: keep it in memory, not on disk.
        cursor.execute("SET LOCAL work_mem = '256MB'")
        cursor.execute("SET LOCAL jit = off")
        cursor.execute(
            "CREATE TEMP TABLE _metrics_daily ON COMMIT DROP AS "
            "SELECT account_id, day, SUM(revenue) AS revenue FROM usage_dailyrollup WHERE day <= %s "
            "GROUP BY account_id, day",
            [as_of],
        )
        cursor.execute("ANALYZE _metrics_daily")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE IF EXISTS _metrics_daily")


_COLUMNS = [
    "account_id",
    "rev_n",
    "rev_prior_n",
    "rev_90",
    "rev_prior_90",
    "rev_n_90_ago",
    "rev_n_half_plateau_ago",
    "rev_n_plateau_ago",
    "rev_n_year_ago",
    "rev_365",
    "consumed_in_term",
    "credits_used",
    "credits_rev_n",
    "first_usage_on",
    "last_usage_on",
    "land_on",
    "term_start",
    "term_end",
    "committed_arr",
    "commit_day_dollars_to_date",
    "commit_day_dollars_term",
    "committed_365",
    "credits",
    "credits_end",
    "included_units",
    "included_used",
    "meters_active",
    "features_active",
    "workloads",
    "series",
]


def account_inputs(
    *,
    as_of: dt.date,
    accounts: Iterable[int] | None = None,
    rollup: bool = True,
    thresholds: Thresholds,
    shared_daily: bool = False,
) -> dict[int, Inputs]:
    """Inputs for ``accounts`` (all when None) as of ``as_of``, keyed by account id.
    ``shared_daily``: read the table ``daily_table(as_of)`` filled instead of the rollups."""
    roots = None if accounts is None else sorted(set(accounts))
    if roots == []:
        return {}
    params = {
        "all": roots is None,
        "roots": roots or [],
        "rollup": rollup,
        "d": as_of,
        "n": thresholds.run_rate_days,
        "plateau": thresholds.plateau_days,
        "half": thresholds.plateau_days // 2,
        "series_days": SERIES_DAYS,
    }
    with connection.cursor() as cursor:
        daily = DAILY_FROM_TABLE if shared_daily else DAILY_FROM_ROLLUPS
        cursor.execute(INPUTS_SQL.replace("{daily}", daily), params)
        rows = cursor.fetchall()
        history_start = usage_history_start(cursor)
    result: dict[int, Inputs] = {}
    for row in rows:
        values = {name: value for name, value in zip(_COLUMNS, row, strict=True) if value is not None}
        values["series"] = [Decimal(v) for v in values.get("series", [])]
        inputs = Inputs(as_of=as_of, history_start=history_start, **values)
        result[inputs.account_id] = inputs
    return result


# --- Per-account metrics (pure) ---------------------------------------------------------


def _q(value: Decimal, step: Decimal = RATIO) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_UP)


def annualized(amount: Decimal, days: int) -> Decimal:
    """Money over a window of ``days`` days, × 365 / days."""
    return amount * DAYS_PER_YEAR / days


def ratio(numerator: Decimal, denominator: Decimal | None) -> Decimal | None:
    if not denominator:
        return None
    return _q(numerator / denominator)


def band_for(burn_rate: Decimal | None, t: Thresholds) -> str:
    if burn_rate is None:
        return "none"
    if burn_rate >= t.expand_band:
        return "expand"
    if burn_rate >= t.escalate_band:
        return "adopt"
    return "escalate"


def compound_monthly_growth(now: Decimal, then: Decimal, days: int = QUARTER_DAYS) -> Decimal | None:
    """(now / then) ^ (30 / days) − 1: the monthly rate that compounds ``then`` into ``now``."""
    if then <= 0:
        return None
    if now <= 0:
        return Decimal(-1)
    return _q((now / then) ** (Decimal(30) / Decimal(days)) - 1)


@dataclass
class Decline:
    """The sudden-decline test's verdict for the latest days, with its evidence."""

    days: int  # consecutive declined days ending on as_of
    expected: Decimal  # Σ expected revenue over those days
    actual: Decimal

    @property
    def annualized_shortfall(self) -> Decimal:
        return _q(annualized(self.expected - self.actual, self.days), CENT)


def detect_decline(series: Sequence[Decimal], t: Thresholds) -> Decline | None:
    """Robust, weekday-seasonal decline test over ``SERIES_DAYS`` of daily revenue.

    The expected level of each of the last 7 days is the median of the same weekday over
    the 8 weeks before them; the spread is that median's absolute deviation (MAD). A day
    is declined when it is below (1 − drop) × expected *and* more than ``mad_multiple``
    robust standard deviations (1.4826 × MAD) under it, and expected is material. The
    alert needs ``decline_days`` declined days in a row ending on the as-of day, so one
    bad day (or one holiday) does not page anyone.
    """
    if len(series) < SERIES_DAYS:
        return None
    baseline, window = series[: SERIES_DAYS - DETECTION_DAYS], series[-DETECTION_DAYS:]
    run_days, run_expected, run_actual = 0, ZERO, ZERO
    for offset, actual in enumerate(window):
        # Same weekday = same position modulo 7 (the series is contiguous days).
        same_weekday = [Decimal(v) for v in baseline[offset::7]]
        expected = statistics.median(same_weekday)
        mad = statistics.median(abs(v - expected) for v in same_weekday)
        declined = (
            expected >= t.decline_min_daily_revenue
            and actual < expected * (1 - t.decline_drop)
            and expected - actual > t.decline_mad_multiple * Decimal("1.4826") * mad
        )
        if declined:
            run_days += 1
            run_expected += expected
            run_actual += actual
        else:
            run_days, run_expected, run_actual = 0, ZERO, ZERO
    if run_days >= t.decline_days:
        return Decline(days=run_days, expected=run_expected, actual=run_actual)
    return None


# The clawback projection's trend: two 4-week windows (whole weeks, so every weekday counts
# equally) at the end of the series.
TREND_DAYS = 28


def robust_daily_level(days: Sequence[Decimal]) -> Decimal:
    """A typical day of ``days`` (whole weeks, oldest first), robust to a dip or a spike:
    the mean over the 7 weekdays of each weekday's median. A few bad days move one value of
    a weekday's median, not the level (the decline test's baseline, over 4 weeks)."""
    return sum((Decimal(statistics.median(Decimal(v) for v in days[o::7])) for o in range(7)), ZERO) / 7


def robust_run_rates(series: Sequence[Decimal]) -> tuple[Decimal, Decimal] | None:
    """(recent, previous) annualized robust levels of the last 28 days and the 28 before."""
    if len(series) < 2 * TREND_DAYS:
        return None
    recent = robust_daily_level(series[-TREND_DAYS:])
    previous = robust_daily_level(series[-2 * TREND_DAYS : -TREND_DAYS])
    return recent * DAYS_PER_YEAR, previous * DAYS_PER_YEAR


@dataclass
class HealthComponent:
    key: str
    label: str
    points: Decimal
    max_points: int
    why: str

    def as_dict(self) -> dict:
        return {
            "key": self.key,
            "label": self.label,
            "points": str(self.points),
            "max": self.max_points,
            "why": self.why,
        }


def _clamp(value: Decimal) -> Decimal:
    return max(ZERO, min(Decimal(1), value))


def _pct(value: Decimal | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def health(
    *,
    burn_rate: Decimal | None,
    mom_growth: Decimal | None,
    decline: Decline | None,
    days_since_usage: int | None,
    commit_pacing: Decimal | None,
    t: Thresholds,
) -> tuple[int, list[HealthComponent]]:
    """0–100, as the sum of five explained components (weights 35/20/15/15/15)."""
    parts: list[HealthComponent] = []
    if burn_rate is None:
        parts.append(HealthComponent("burn", "Burn rate", Decimal(25), 35, "no commitment in force: neutral"))
    else:
        parts.append(
            HealthComponent(
                "burn",
                "Burn rate",
                35 * _clamp(burn_rate / t.expand_band),
                35,
                f"burn {_pct(burn_rate)}; full marks at {_pct(t.expand_band)}",
            )
        )
    if mom_growth is None:
        parts.append(HealthComponent("trend", "Trend", Decimal(10), 20, "no prior period to compare: neutral"))
    else:
        parts.append(
            HealthComponent(
                "trend",
                "Trend",
                20 * _clamp((mom_growth + Decimal("0.20")) / Decimal("0.30")),
                20,
                f"month-over-month {_pct(mom_growth)}; 0 at −20%, full at +10%",
            )
        )
    if decline is None:
        parts.append(HealthComponent("anomalies", "Anomalies", Decimal(15), 15, "no sudden decline"))
    else:
        parts.append(
            HealthComponent(
                "anomalies",
                "Anomalies",
                ZERO,
                15,
                f"sudden decline for {decline.days} days: {decline.actual:.2f} vs {decline.expected:.2f} expected",
            )
        )
    if days_since_usage is None:
        parts.append(HealthComponent("recency", "Last usage", ZERO, 15, "no usage yet"))
    else:
        parts.append(
            HealthComponent(
                "recency",
                "Last usage",
                15 * _clamp(1 - Decimal(max(days_since_usage - 1, 0)) / 13),
                15,
                f"{days_since_usage} day(s) since the last billable usage; 0 after 14",
            )
        )
    if commit_pacing is None:
        parts.append(HealthComponent("pacing", "Commit pacing", Decimal(10), 15, "no commitment in force: neutral"))
    else:
        parts.append(
            HealthComponent(
                "pacing",
                "Commit pacing",
                15 * _clamp(commit_pacing),
                15,
                f"{_pct(commit_pacing)} of the pro-rated commitment consumed",
            )
        )
    for part in parts:
        part.points = _q(part.points, Decimal("0.1"))
    score = int(sum(p.points for p in parts).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return score, parts


@dataclass
class Metrics:
    """Every per-account metric as of one day (the API's field names)."""

    account_id: int
    as_of: dt.date
    run_rate: Decimal
    committed_arr: Decimal
    burn_rate: Decimal | None
    band: str
    commit_pacing: Decimal | None
    projected_burn_at_term_end: Decimal | None
    consumption_rate: Decimal | None
    credit_balance: Decimal | None
    credits_run_out_on: dt.date | None
    ttfbe_days: int | None
    mom_growth: Decimal | None
    expansion_velocity: Decimal | None
    net_new_arr: Decimal
    revenue_30d: Decimal
    consumed_in_term: Decimal
    last_usage_on: dt.date | None
    days_since_usage: int | None
    meters_active: int
    workloads: int
    feature_adoption: Decimal
    health_score: int
    health_components: list[HealthComponent]
    decline: Decline | None
    trend: list[Decimal]
    land_on: dt.date | None
    next_gate: str
    next_gate_on: dt.date | None
    inputs: Inputs


def gates(land_on: dt.date | None, as_of: dt.date) -> tuple[str, dt.date | None]:
    """The next comp gate of the land deal: the 90-day checkpoint, then the 12-month clawback."""
    if land_on is None:
        return "", None
    checkpoint = land_on + dt.timedelta(days=CHECKPOINT_DAYS)
    clawback = land_on + dt.timedelta(days=CLAWBACK_DAYS)
    if as_of < checkpoint:
        return "checkpoint_90", checkpoint
    if as_of < clawback:
        return "clawback_12m", clawback
    return "", None


def derive(i: Inputs, t: Thresholds, *, feature_count: int) -> Metrics:
    """Every metric from one account's inputs; see docs/metrics.md for each definition."""
    d = i.as_of
    n = t.run_rate_days
    run_rate = _q(annualized(i.rev_n, n), CENT)
    committed = i.committed_arr
    burn = ratio(run_rate, committed)
    to_date = i.commit_day_dollars_to_date / DAYS_PER_YEAR
    term_total = i.commit_day_dollars_term / DAYS_PER_YEAR
    pacing = ratio(i.consumed_in_term, to_date)
    projected = None
    if term_total and i.term_end is not None:
        remaining = Decimal((i.term_end - d).days)
        projected = ratio(i.consumed_in_term + run_rate * remaining / DAYS_PER_YEAR, term_total)

    credit_balance = run_out = None
    if i.credits is not None:
        credit_balance = _q(i.credits - i.credits_used, CENT)
        daily = i.credits_rev_n / n  # the buyer's own burn, not its whole subtree's
        if credit_balance <= 0:
            run_out = d
        elif daily > 0:
            days_left = int((credit_balance / daily).to_integral_value(rounding="ROUND_CEILING"))
            run_out = d + dt.timedelta(days=min(days_left, 36500))

    if i.included_units:
        consumption = ratio(i.included_used, i.included_units)
    elif i.credits:
        consumption = ratio(i.credits_used, i.credits)
    else:
        consumption = ratio(i.consumed_in_term, term_total)

    mom = None if not i.rev_prior_n else _q(i.rev_n / i.rev_prior_n - 1)
    velocity = None
    if i.land_on is not None and (d - i.land_on).days > QUARTER_DAYS:
        velocity = compound_monthly_growth(i.rev_n, i.rev_n_90_ago)
    net_new = _q(annualized(i.rev_90 - i.rev_prior_90, QUARTER_DAYS), CENT)
    days_since = None if i.last_usage_on is None else (d - i.last_usage_on).days
    decline = detect_decline(i.series, t)
    score, components = health(
        burn_rate=burn,
        mom_growth=mom,
        decline=decline,
        days_since_usage=days_since,
        commit_pacing=pacing,
        t=t,
    )
    gate, gate_on = gates(i.land_on, d)
    return Metrics(
        account_id=i.account_id,
        as_of=d,
        run_rate=run_rate,
        committed_arr=committed,
        burn_rate=burn,
        band=band_for(burn, t),
        commit_pacing=pacing,
        projected_burn_at_term_end=projected,
        consumption_rate=consumption,
        credit_balance=credit_balance,
        credits_run_out_on=run_out,
        ttfbe_days=i.ttfbe_days,
        mom_growth=mom,
        expansion_velocity=velocity,
        net_new_arr=net_new,
        revenue_30d=_q(sum(i.series[-30:], ZERO), CENT),
        consumed_in_term=_q(i.consumed_in_term, CENT),
        last_usage_on=i.last_usage_on,
        days_since_usage=days_since,
        meters_active=i.meters_active,
        workloads=i.workloads,
        feature_adoption=ratio(Decimal(i.features_active), Decimal(feature_count)) or ZERO,
        health_score=score,
        health_components=components,
        decline=decline,
        trend=[_q(v, CENT) for v in i.series[-56:]],
        land_on=i.land_on,
        next_gate=gate,
        next_gate_on=gate_on,
        inputs=i,
    )


def feature_count() -> int:
    """Distinct features across meters: the denominator of feature adoption."""
    from usage.models import Meter

    return Meter.objects.exclude(feature="").values("feature").distinct().count()


def account_metrics(
    *, as_of: dt.date, accounts: Iterable[int] | None = None, thresholds: Thresholds | None = None
) -> dict[int, Metrics]:
    """Metrics per account (hierarchy rolled up) for ``accounts`` (all when None)."""
    from usage.models import AlertSettings

    t = thresholds or Thresholds.from_settings(AlertSettings.current())
    features = feature_count()
    return {
        account_id: derive(inputs, t, feature_count=features)
        for account_id, inputs in account_inputs(as_of=as_of, accounts=accounts, thresholds=t).items()
    }


# --- Portfolio metrics (pure over own-only inputs) --------------------------------------


@dataclass
class Portfolio:
    """Totals over a set of accounts, each counted once (own rows, not subtrees)."""

    as_of: dt.date
    accounts: int
    run_rate: Decimal
    committed_arr: Decimal
    burn_rate: Decimal | None
    nrr: Decimal | None
    gur: Decimal | None
    median_ttfbe_days: Decimal | None
    expansion_velocity: Decimal | None
    consumption_rate: Decimal | None
    net_new_arr: Decimal
    realization_committed: Decimal
    realization_realized: Decimal

    @property
    def realization_gap(self) -> Decimal:
        return self.realization_committed - self.realization_realized

    @property
    def realization(self) -> Decimal | None:
        return ratio(self.realization_realized, self.realization_committed)


def portfolio(inputs: Iterable[Inputs], *, as_of: dt.date, t: Thresholds) -> Portfolio:
    """Shared metrics over a set: NRR, GUR, median TTFBE, velocity, consumption, realization.

    * NRR: trailing-N revenue now ÷ the same window a year ago, over accounts with revenue then.
    * GUR: Σ min(this 90 days, prior 90 days) ÷ Σ prior 90 days, over accounts with prior revenue.
    * Expansion velocity: compounded monthly growth of the set's run rate over 90 days,
      accounts whose land contract is older than 90 days.
    * Realization over the trailing 365 days: commitment pro-rated to the days in force
      vs revenue consumed by the committed accounts.
    """
    rows = list(inputs)
    n = t.run_rate_days
    run_rate = _q(annualized(sum((i.rev_n for i in rows), ZERO), n), CENT)
    committed = sum((i.committed_arr for i in rows), ZERO)
    then = [i for i in rows if i.rev_n_year_ago > 0]
    prior = [i for i in rows if i.rev_prior_90 > 0]
    ttfbes = [i.ttfbe_days for i in rows if i.ttfbe_days is not None]
    mature = [i for i in rows if i.land_on is not None and (as_of - i.land_on).days > QUARTER_DAYS]
    committed_rows = [i for i in rows if i.committed_365 > 0]
    term_total = sum((i.commit_day_dollars_term for i in rows), ZERO) / DAYS_PER_YEAR
    return Portfolio(
        as_of=as_of,
        accounts=len(rows),
        run_rate=run_rate,
        committed_arr=committed,
        burn_rate=ratio(run_rate, committed),
        nrr=ratio(sum((i.rev_n for i in then), ZERO), sum((i.rev_n_year_ago for i in then), ZERO)),
        gur=ratio(
            sum((min(i.rev_90, i.rev_prior_90) for i in prior), ZERO), sum((i.rev_prior_90 for i in prior), ZERO)
        ),
        median_ttfbe_days=Decimal(statistics.median(ttfbes)).quantize(Decimal("0.1")) if ttfbes else None,
        expansion_velocity=compound_monthly_growth(
            sum((i.rev_n for i in mature), ZERO), sum((i.rev_n_90_ago for i in mature), ZERO)
        ),
        # Usage of accounts with no committed volume (a credits plan without committed ARR)
        # has nothing to be a share of: only committed accounts count, as for realization.
        consumption_rate=ratio(
            sum((i.consumed_in_term for i in rows if i.commit_day_dollars_term > 0), ZERO), term_total
        ),
        net_new_arr=_q(annualized(sum((i.rev_90 - i.rev_prior_90 for i in rows), ZERO), QUARTER_DAYS), CENT),
        realization_committed=_q(sum((i.committed_365 for i in committed_rows), ZERO), CENT),
        realization_realized=_q(sum((i.rev_365 for i in committed_rows), ZERO), CENT),
    )


def portfolio_metrics(
    *, as_of: dt.date, accounts: Iterable[int] | None = None, thresholds: Thresholds | None = None
) -> Portfolio:
    """Portfolio metrics over ``accounts`` and all their divisions (the company when None)."""
    from usage.models import AlertSettings

    t = thresholds or Thresholds.from_settings(AlertSettings.current())
    ids = None if accounts is None else subtree_ids(accounts)
    return portfolio(account_inputs(as_of=as_of, accounts=ids, rollup=False, thresholds=t).values(), as_of=as_of, t=t)


def subtree_ids(accounts: Iterable[int]) -> list[int]:
    """The accounts and every division below them."""
    roots = sorted(set(accounts))
    if not roots:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE tree(id) AS (
                SELECT id FROM accounts_account WHERE id = ANY(%s)
                UNION SELECT a.id FROM accounts_account a JOIN tree t ON a.parent_id = t.id
            ) SELECT id FROM tree
            """,
            [roots],
        )
        return [row[0] for row in cursor.fetchall()]


# --- Definitions shown beside the numbers (hover text, API docs) ------------------------

DEFINITIONS: dict[str, tuple[str, str]] = {
    "run_rate": ("Run rate", "Consumed revenue over the trailing 30 days × 365 / 30 (annualized)."),
    "committed_arr": ("Committed ARR", "Sum of committed ARR of the contracts in force on the day."),
    "burn_rate": ("Burn rate", "Run rate ÷ committed ARR in force. Bands: ≥ 70% expand, 40–70% adopt, < 40% escalate."),
    "band": ("Band", "≥ 70% pitch expansion; 40–70% drive adoption; < 40% escalate to CS and the land AE."),
    "commit_pacing": (
        "Commit pacing",
        "Consumed since the term started ÷ the commitment pro-rated to the days elapsed.",
    ),
    "projected_burn_at_term_end": (
        "Projected at term end",
        "(Consumed so far + run rate × days left / 365) ÷ the commitment over the whole term.",
    ),
    "consumption_rate": (
        "Consumption rate",
        "Usage as a share of what was bought: included volume this month (hybrid), credits used "
        "(prepaid), or consumed ÷ the whole term's commitment.",
    ),
    "credit_balance": ("Credit balance", "Credits purchased − revenue consumed since the credit contract started."),
    "credits_run_out_on": ("Credits run out", "Today + balance ÷ the trailing-30-day daily burn."),
    "ttfbe_days": ("TTFBE", "Days from the land contract's start to the first priced usage."),
    "mom_growth": ("MoM growth", "Trailing 30 days' revenue ÷ the 30 days before, − 1."),
    "expansion_velocity": (
        "Expansion velocity",
        "Compounded monthly growth of run rate over the trailing 90 days (contracts older than 90 days).",
    ),
    "net_new_arr": (
        "Net-new ARR",
        "Trailing-90-day annualized run rate − the prior 90 days' annualized run rate (can be negative).",
    ),
    "health_score": (
        "Health",
        "0–100: burn (35), trend (20), anomalies (15), days since last usage (15), commit pacing (15).",
    ),
    "meters_active": ("Use cases", "Distinct meters with usage in the trailing 30 days."),
    "workloads": ("Workloads", "Distinct workloads seen so far."),
    "feature_adoption": ("Feature adoption", "Share of the product's features used in the trailing 30 days."),
    "nrr": ("NRR", "Revenue now (trailing 30 days) from accounts with revenue a year ago ÷ their revenue then."),
    "gur": ("GUR", "Σ min(this 90 days, prior 90 days) ÷ Σ prior 90 days, accounts with prior usage (≤ 100%)."),
    "median_ttfbe_days": ("Median TTFBE", "Median days from contract start to the first priced usage."),
    "realization": (
        "Realization",
        "Revenue consumed ÷ commitment pro-rated over the trailing 365 days; the gap is committed − realized.",
    ),
    "realization_committed": ("Committed (365 days)", "Commitments pro-rated over the trailing 365 days."),
    "realization_realized": ("Realized", "Revenue consumed over the same 365 days."),
    "realization_gap": ("Realization gap", "Committed (365 days) − realized."),
    "accounts": ("Accounts", "Accounts with a contract or usage, each counted once."),
}


# --- Burn at many (account, day) points: comp gates, clawbacks and estimates ------------

BURN_AT_SQL = """
WITH RECURSIVE points AS (
    SELECT DISTINCT * FROM unnest(%(accounts)s::bigint[], %(days)s::date[]) AS p(account_id, day)
),
tree(root_id, account_id) AS (
    SELECT DISTINCT account_id, account_id FROM points
    UNION ALL
    SELECT t.root_id, a.id FROM accounts_account a JOIN tree t ON a.parent_id = t.account_id
),
-- One index range per (point, account in its subtree): (account_id, day) finds the
-- trailing window directly instead of scanning every account's window.
revenue AS (
    SELECT p.account_id, p.day, SUM(w.revenue) AS revenue
    FROM points p
    JOIN tree t ON t.root_id = p.account_id
    CROSS JOIN LATERAL (
        SELECT SUM(r.revenue) AS revenue FROM usage_dailyrollup r
        WHERE r.account_id = t.account_id AND r.day > p.day - %(n)s AND r.day <= p.day
    ) w
    GROUP BY p.account_id, p.day
),
committed AS (
    SELECT p.account_id, p.day, SUM(c.committed_arr) AS committed
    FROM points p
    JOIN tree t ON t.root_id = p.account_id
    JOIN accounts_contract c ON c.account_id = t.account_id AND c.start_on <= p.day AND c.end_on >= p.day
    GROUP BY p.account_id, p.day
)
SELECT p.account_id, p.day, COALESCE(r.revenue, 0), COALESCE(c.committed, 0)
FROM points p
LEFT JOIN revenue r ON r.account_id = p.account_id AND r.day = p.day
LEFT JOIN committed c ON c.account_id = p.account_id AND c.day = p.day
"""


@dataclass(frozen=True)
class BurnPoint:
    run_rate: Decimal
    committed_arr: Decimal

    @property
    def burn_rate(self) -> Decimal | None:
        return ratio(self.run_rate, self.committed_arr)


def burn_at(points: Iterable[tuple[int, dt.date]], *, run_rate_days: int = 30) -> dict[tuple[int, dt.date], BurnPoint]:
    """Run rate, committed ARR in force and burn (the same definitions as ``derive``, the
    account's subtree rolled up) at each (account id, day), in one statement."""
    pairs = sorted(set(points))
    if not pairs:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            BURN_AT_SQL,
            {"accounts": [a for a, _ in pairs], "days": [d for _, d in pairs], "n": run_rate_days},
        )
        rows = cursor.fetchall()
    return {
        (account_id, day): BurnPoint(_q(annualized(revenue, run_rate_days), CENT), committed)
        for account_id, day, revenue, committed in rows
    }


RETENTION_SQL = """
SELECT r.account_id,
    SUM(r.revenue) FILTER (WHERE r.day > %(d)s - %(n)s) AS rev_n,
    SUM(r.revenue) FILTER (WHERE r.day <= %(d)s - 365) AS rev_n_year_ago
FROM usage_dailyrollup r
WHERE r.account_id = ANY(%(accounts)s)
  AND ((r.day > %(d)s - %(n)s AND r.day <= %(d)s) OR (r.day > %(d)s - 365 - %(n)s AND r.day <= %(d)s - 365))
GROUP BY r.account_id
"""


def retention_inputs(*, as_of: dt.date, accounts: Iterable[int], thresholds: Thresholds) -> dict[int, Inputs]:
    """Only the two windows NRR needs (trailing N days now and a year ago), own rows, for
    many accounts: ``portfolio(...).nrr`` over these equals it over ``account_inputs``."""
    ids = sorted(set(accounts))
    result = {account_id: Inputs(account_id=account_id, as_of=as_of) for account_id in ids}
    if not ids:
        return result
    with connection.cursor() as cursor:
        cursor.execute(RETENTION_SQL, {"d": as_of, "n": thresholds.run_rate_days, "accounts": ids})
        for account_id, rev_n, year_ago in cursor.fetchall():
            result[account_id].rev_n = rev_n or ZERO
            result[account_id].rev_n_year_ago = year_ago or ZERO
    return result
