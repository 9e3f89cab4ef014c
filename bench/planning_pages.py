"""The planning pages (cohorts, deal desk, waterfall) served cold, warm and after a change.

    python -m bench.planning_pages [--accounts 5000] [--requests 20] [--reuse]

On the metrics benchmark's company (``bench.metrics_data``: 5,000 accounts, ~13M daily
rollups, in ``revops_bench_metrics``; ``--reuse`` keeps it), a leader opens each planning
page through ``django.test.Client`` (server time: the view, its queries and the template):

1. **cold**: the planning cache emptied first, so the page computes (the issue measured
   1.0–2.1 s for these before the cache);
2. **warm**: ``--requests`` more views (p50 / p95; budget < 300 ms);
3. **after a change**: one rollup of a day inside the page's range is rewritten (the
   statement trigger records its month, so the cached result no longer matches) and the
   page is timed again: it recomputes, and shows the changed figure;
4. **after an unrelated change** (the waterfall of a quarter ending 60 days before the data's
   last day): a rollup after its end is rewritten (today's ingest); the page stays warm.

The cache is the project's Redis cache (``REDIS_URL``; the bench's default Redis database 10).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from decimal import Decimal

from bench import common, metrics_data
from bench.metrics_refresh import LEADER, Samples, pct

NAME = "planning_pages"
WARM_BUDGET_MS = 300.0
PAGES = (
    ("cohorts", "/planning/cohorts/"),
    ("deal desk", "/planning/deal-desk/?segment=mid-market&industry=Software&committed_arr=120000"),
    ("waterfall", "/planning/waterfall/"),
)


def timed_get(client, path: str) -> tuple[float, int, bytes]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        started = time.perf_counter()
        response = client.get(path)
        ms = (time.perf_counter() - started) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"{path}: HTTP {response.status_code} {response.get('Location', '')}")
    return ms, len(ctx.captured_queries), response.content


def clear_planning_cache() -> int:
    from django.core.cache import cache

    keys = list(cache.iter_keys("forecasting:planning:*")) if hasattr(cache, "iter_keys") else []
    if keys:
        cache.delete_many(keys)
        return len(keys)
    # Django's own Redis backend has no key iteration: drop the whole bench cache database.
    cache.clear()
    return -1


def rewrite_one_rollup(day: dt.date) -> tuple[int, Decimal]:
    """Add 1 to the revenue of one rollup of ``day`` (a real UPDATE: the trigger fires)."""
    from usage.models import DailyRollup

    row = DailyRollup.objects.filter(day=day).order_by("id").first()
    DailyRollup.objects.filter(pk=row.pk).update(revenue=row.revenue + 1)
    return row.pk, row.revenue


def restore_rollup(pk: int, revenue: Decimal) -> None:
    from usage.models import DailyRollup

    DailyRollup.objects.filter(pk=pk).update(revenue=revenue)


def run(args: argparse.Namespace, summary: common.Summary) -> None:
    from django.test import Client

    from revops.models import User
    from usage.models import DailyRollup

    leader = User.objects.get(email=LEADER)
    client = Client()
    client.force_login(leader)
    as_of = DailyRollup.objects.order_by("-day").values_list("day", flat=True).first()
    common.note(f"as of {as_of} (the latest rollup day)")

    for label, path in PAGES:
        common.heading(f"{label}: {path}")
        cleared = clear_planning_cache()
        common.note(f"planning cache emptied ({'whole cache' if cleared < 0 else f'{cleared} keys'})")
        cold_ms, cold_q, _ = timed_get(client, path)
        summary.info(f"{label}: cold (computes)", f"{cold_ms:.0f} ms, {cold_q} queries")

        warm = Samples(f"{label} warm")
        for _ in range(args.requests):
            ms, queries, _ = timed_get(client, path)
            warm.ms.append(ms)
            warm.queries.append(queries)
        common.note(warm.line())
        p95 = pct(warm.ms, 95)
        summary.check(
            f"{label}: warm p95",
            f"{p95:.0f} ms (p50 {pct(warm.ms, 50):.0f}), {pct(warm.queries, 50)} queries",
            f"< {WARM_BUDGET_MS:g} ms",
            p95 < WARM_BUDGET_MS,
        )

        # A rollup inside the range changes: the page recomputes.
        pk, revenue = rewrite_one_rollup(as_of - dt.timedelta(days=3))
        try:
            changed_ms, changed_q, _ = timed_get(client, path)
            again_ms, _, _ = timed_get(client, path)
        finally:
            restore_rollup(pk, revenue)
        summary.check(
            f"{label}: a rollup in range rewritten → recomputed, then warm",
            f"{changed_ms:.0f} ms ({changed_q} queries), then {again_ms:.0f} ms",
            "recomputes (≈ cold), then warm",
            changed_ms > 3 * again_ms and again_ms < WARM_BUDGET_MS,
        )
        timed_get(client, path)  # the restored value: computed once more, cached

        if label != "waterfall":
            continue
        # Today's ingest: a rollup after the end of an earlier quarter's waterfall is rewritten.
        # That waterfall reads nothing after its end (nor do the ramps it shows, as of its end),
        # so it stays warm.
        end = as_of - dt.timedelta(days=60)
        earlier = f"/planning/waterfall/?start={end - dt.timedelta(days=91)}&end={end}"
        timed_get(client, earlier)
        pk, revenue = rewrite_one_rollup(as_of - dt.timedelta(days=3))
        try:
            unrelated_ms, _, _ = timed_get(client, earlier)
        finally:
            restore_rollup(pk, revenue)
        summary.check(
            f"{label}: a quarter ending {end}, then a rollup after its end rewritten → still warm",
            f"{unrelated_ms:.0f} ms",
            f"< {WARM_BUDGET_MS:g} ms",
            unrelated_ms < WARM_BUDGET_MS,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.planning_pages", description=__doc__.split("\n\n")[0])
    metrics_data.add_data_arguments(parser)
    parser.add_argument("--requests", type=int, default=20, help="Warm requests per page (default 20).")
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    common.install_exit_on_sigterm()
    common.allow_test_client_host()
    os.environ.setdefault("REDIS_URL", common.DEFAULT_REDIS_URL)
    summary = common.Summary(NAME)
    _url, generated = metrics_data.prepare_database(args)
    rows = common.sql_one("SELECT count(*) FROM usage_dailyrollup")[0]
    summary.info(
        "data", f"{rows:,} DailyRollup rows" + (f", generated in {generated.total_s:.0f} s" if generated else "")
    )
    common.note(common.code_version())
    run(args, summary)
    summary.print()
    summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
