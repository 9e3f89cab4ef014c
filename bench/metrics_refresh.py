"""Shared metrics and alerts (issue #4): the full refresh, the metrics API and the pages.

    python -m bench.metrics_refresh [--reuse] [--accounts 5000] [--as-of 2026-11-20]
                                    [--api-requests 300] [--page-requests 100] [--explain]

Data: ``bench.metrics_data`` in ``revops_bench_metrics`` (the bench database's name plus
``_metrics``), dropped, re-created, migrated and generated (~13M ``DailyRollup`` rows,
5,000 accounts, 18 months to ``--as-of``, 2–3 minutes), or kept with ``--reuse`` when it
already holds exactly that data. Metric snapshots and alerts a previous run left (tables
of the ``usage`` app named like alert, metric or snapshot) are emptied first, so the first
refresh is always a first one.

Timed, in this process (server time only, no network):

1. ``usage.signals.services.refresh_metrics(as_of=…)``: the full refresh, then again (a re-run,
   which must update alerts, not duplicate them). Open alerts are counted after each run;
   every SQL statement is timed and the heaviest are listed.
2. ``GET /api/v1/accounts/<external_id>/metrics?as_of=…`` on random accounts with
   ``django.test.Client`` logged in as a leader (a read-scoped API key when the API
   refuses the session).
3. Pages: the triage queue ``/alerts/`` (as the CSM with the most alerts, then as a
   leader), the AE book ``/book/`` (as the AE with the biggest book), the account page
   ``/accounts/<external_id>/`` (random accounts, as a leader), and every panel a page
   loads with htmx (``hx-get`` with ``hx-trigger`` ``load``/``revealed``/``intersect``),
   requested as htmx does. Queries per request are counted (``CaptureQueriesContext``).

Budgets (issue #4): full refresh < 60 s; metrics API p95 < 50 ms; pages p95 < 200 ms.
A missing function or URL (the code under test not written yet) is reported as FAIL
with what is missing; an exception in the code under test is printed with its traceback
and reported as FAIL ("crashed: …"), and the other parts still run. The exit status
stays 0 either way (rows of a non-zero exit would be lost from ``python -m bench``'s table).
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import math
import random
import re
import sys
import time
import traceback
from collections import defaultdict
from dataclasses import asdict, dataclass, field, is_dataclass

from bench import common, metrics_data

NAME = "metrics_refresh"
REFRESH_BUDGET_S = 60.0
API_BUDGET_MS = 50.0
PAGE_BUDGET_MS = 200.0
OPEN_STATES = ("open", "acknowledged", "snoozed")
CLOSED_STATES = ("resolved", "dismissed", "cleared", "closed")
LEADER = "bench-leader-01@example.com"


class Missing(Exception):
    """The code under test does not have this yet."""


# --- Helpers -----------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Samples:
    label: str
    ms: list[float] = field(default_factory=list)
    queries: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def line(self) -> str:
        if not self.ms:
            return f"{self.label}: no successful request"
        q = sorted(self.queries)
        return (
            f"{self.label}: {len(self.ms)} requests, p50 {pct(self.ms, 50):.1f} ms, p95 {pct(self.ms, 95):.1f} ms, "
            f"max {max(self.ms):.1f} ms; queries per request p50 {pct(q, 50)}, max {q[-1]}"
            + (f"; {len(self.errors)} errors" if self.errors else "")
        )


def require_url(path: str) -> None:
    from django.urls import Resolver404, resolve

    try:
        resolve(path.split("?")[0])
    except Resolver404:
        raise Missing(f"no URL matches {path.split('?')[0]} (not in revops/urls.py yet)") from None
    except ImportError as exc:  # the URLconf names a module that is not written yet
        raise Missing(f"the URLconf does not import ({exc})") from exc


def users() -> dict[str, object]:
    from revops.models import User

    return {u.email: u for u in User.objects.filter(email__startswith="bench-")}


def current_owner_counts(role_filter: list[str], as_of: dt.date) -> list[tuple[int, int]]:
    """(person id, accounts owned on ``as_of``) for owners in these roles, biggest book first."""
    from django.db.models import Count, Q

    from accounts.models import Ownership

    rows = (
        Ownership.objects.filter(role__in=role_filter, start_on__lte=as_of)
        .filter(Q(end_on__isnull=True) | Q(end_on__gte=as_of))
        .values("person")
        .annotate(n=Count("account", distinct=True))
        .order_by("-n", "person")
    )
    return [(r["person"], r["n"]) for r in rows]


def alert_model():
    try:
        from usage.models import Alert
    except ImportError:
        return None
    return Alert


def alert_state(as_of: dt.date) -> dict[str, object]:
    """Counts of alerts: total, by state, open ones by kind, duplicate open (account, kind)."""
    from django.db.models import Count

    Alert = alert_model()
    if Alert is None:
        return {"missing": "usage.models.Alert does not exist yet"}
    names = {f.name for f in Alert._meta.get_fields()}
    out: dict[str, object] = {"total": Alert.objects.count()}
    if "state" not in names:
        out["open"] = out["total"]
        out["note"] = "Alert has no state field: every alert counted as open"
        open_qs = Alert.objects.all()
    else:
        by_state = dict(Alert.objects.values_list("state").annotate(n=Count("pk")).order_by())
        out["by_state"] = by_state
        import usage.models

        choices = [value for value, _label in (Alert._meta.get_field("state").choices or [])]
        states = [str(s) for s in getattr(usage.models, "ACTIVE_ALERT_STATES", ())] or [
            s for s in OPEN_STATES if s in choices or s in by_state
        ]
        states = states or sorted(s for s in set(choices) | set(by_state) if s not in CLOSED_STATES)
        open_qs = Alert.objects.filter(state__in=states)
        out["open_states"] = states
        out["open"] = open_qs.count()
    if "kind" in names:
        out["open_by_kind"] = dict(open_qs.values_list("kind").annotate(n=Count("pk")).order_by("kind"))
        if "account" in names:
            out["duplicates"] = (
                open_qs.values("account", "kind").annotate(n=Count("pk")).filter(n__gt=1).order_by().count()
            )
    return out


def reset_metric_tables() -> list[str]:
    """Empty what a previous refresh wrote (usage tables named like alert/metric/snapshot).

    Settings (thresholds) are kept; an alert's history goes with it (CASCADE).
    """
    from django.apps import apps
    from django.db import connection

    tables = sorted(
        {
            m._meta.db_table
            for m in apps.get_app_config("usage").get_models()
            if m._meta.managed
            and re.search(r"alert|metric|snapshot", m._meta.db_table)
            and not re.search(r"setting|config", m._meta.db_table)  # thresholds stay
        }
    )
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        tables = [t for t in tables if t in existing]
        emptied = []
        for table in tables:
            cursor.execute(f'SELECT EXISTS (SELECT 1 FROM "{table}")')  # noqa: S608 - a model's own table
            if cursor.fetchone()[0]:
                emptied.append(table)
        if emptied:
            cursor.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in emptied) + " CASCADE")
    return emptied


def describe(result: object) -> str:
    if is_dataclass(result) and not isinstance(result, type):
        return ", ".join(f"{k}={v}" for k, v in asdict(result).items())
    if isinstance(result, dict):
        return ", ".join(f"{k}={v}" for k, v in result.items())
    if hasattr(result, "__dict__"):
        return ", ".join(f"{k}={v}" for k, v in vars(result).items() if not k.startswith("_"))
    return repr(result)


def heaviest_statements(timer: common.StatementTimer, wall: float, limit: int = 8) -> list[str]:
    groups: dict[str, list[float]] = defaultdict(list)
    for s in timer.statements:
        key = " ".join(s.sql.split())[:110]
        groups[key].append(s.seconds)
    in_sql = sum(s.seconds for s in timer.statements)
    lines = [
        f"{len(timer.statements):,} statements, {in_sql:.2f} s in SQL, "
        f"{wall - in_sql:.2f} s outside (Python, gaps) of {wall:.2f} s"
    ]
    for key, secs in sorted(groups.items(), key=lambda kv: -sum(kv[1]))[:limit]:
        if sum(secs) < 0.01:
            break
        lines.append(f"{sum(secs):7.2f} s  ×{len(secs):<6} {key}")
    return lines


# --- 1. The refresh ----------------------------------------------------------------------


def time_refresh(args: argparse.Namespace, summary: common.Summary) -> None:
    common.heading(f"usage.signals.services.refresh_metrics(as_of={args.as_of})")
    try:
        from usage.signals import services
    except ImportError as exc:
        raise Missing(f"usage.signals.services cannot be imported: {exc}") from exc
    refresh = getattr(services, "refresh_metrics", None)
    if refresh is None:
        raise Missing("usage.signals.services.refresh_metrics does not exist yet")
    emptied = reset_metric_tables()
    common.note(f"emptied before the first run: {', '.join(emptied)}" if emptied else "no metrics or alerts stored yet")
    seconds: list[float] = []
    states: list[dict[str, object]] = []
    for run in (1, 2):
        label = "full refresh" if run == 1 else "re-run, same as_of"
        common.checkpoint()
        timer = common.StatementTimer()
        cpu = common.MachineCpu()
        plans: list[str] = []
        if args.explain and run == 1:
            with common.auto_explain(1000) as plans, timer.installed():
                started = time.perf_counter()
                result = refresh(as_of=args.as_of)
                finished = time.perf_counter()
        else:
            with timer.installed():
                started = time.perf_counter()
                result = refresh(as_of=args.as_of)
                finished = time.perf_counter()
        wall = finished - started
        seconds.append(wall)
        state = alert_state(args.as_of)
        states.append(state)
        common.note(f"run {run} ({label}): {wall:.2f} s → {describe(result)}")
        common.note(cpu.report())
        common.note(
            f"alerts after run {run}: {state.get('open', '?')} open"
            + (f" (states {state['open_states']})" if "open_states" in state else "")
            + f", {state.get('total', '?')} in all"
            + (f"; by state {state['by_state']}" if "by_state" in state else "")
            + (f"; open by kind {state['open_by_kind']}" if "open_by_kind" in state else "")
            + (f"; {state['missing']}" if "missing" in state else "")
        )
        for line in heaviest_statements(timer, wall):
            print(f"    {line}")
        if plans:
            common.note("auto_explain plans (EXPLAIN ANALYZE, BUFFERS) of statements over 1 s:")
            common.print_plans(plans)
        summary.check(
            f"refresh_metrics, {label}", f"{wall:.2f} s", f"< {REFRESH_BUDGET_S:g} s", wall < REFRESH_BUDGET_S
        )
        summary.info(f"  run {run}: result", describe(result)[:80])
        summary.info(f"  run {run}: open alerts / all alerts", f"{state.get('open', '?')} / {state.get('total', '?')}")
    first, second = states
    if "missing" in second:
        summary.check("re-run does not duplicate alerts", "usage.models.Alert missing", "no duplicates", False)
        return
    dupes = second.get("duplicates")
    same = first.get("open") == second.get("open")
    value = f"open {first.get('open')} → {second.get('open')}" + (
        f", {dupes} duplicate open (account, kind)" if dupes is not None else ", no kind/account fields"
    )
    summary.check("re-run does not duplicate alerts", value, "same open count, 0 duplicates", same and not dupes)


# --- 2. The metrics API ------------------------------------------------------------------


def time_api(args: argparse.Namespace, summary: common.Summary, external_ids: list[str]) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    common.heading(f"GET /api/v1/accounts/<external_id>/metrics?as_of={args.as_of} × {args.api_requests}")
    rng = random.Random(f"{args.seed}:api")
    path = "/api/v1/accounts/{}/metrics"
    require_url(path.format(external_ids[0]))
    client = Client()
    client.force_login(users()[LEADER])
    query = {"as_of": args.as_of.isoformat()}
    headers: dict[str, str] = {}
    key = None
    probe = client.get(path.format(external_ids[0]), query)
    if probe.status_code in (401, 403):
        from revops.api_keys import api_key_create

        key, raw = api_key_create(
            name="bench metrics_refresh",
            scopes=["read"],
            acts_as=users()[LEADER],
            rate_limit_per_minute=10_000_000,
        )
        headers = {"Authorization": f"Bearer {raw}"}
        common.note(f"the API answered {probe.status_code} to the leader's session: using a read-scoped API key")
    else:
        common.note(f"authenticated by the leader's session (first answer {probe.status_code})")
    try:
        samples = Samples("metrics API")
        for i in range(args.warmup + args.api_requests):
            ext = rng.choice(external_ids)
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                response = client.get(path.format(ext), query, headers=headers)
                ms = (time.perf_counter() - started) * 1000
            if i < args.warmup:
                continue
            if response.status_code != 200:
                samples.errors.append(f"{ext}: HTTP {response.status_code} {response.content[:200]!r}")
                continue
            samples.ms.append(ms)
            samples.queries.append(len(ctx.captured_queries))
        report(samples, summary, API_BUDGET_MS, "metrics API")
    finally:
        if key is not None:
            key.delete()


def report(samples: Samples, summary: common.Summary, budget_ms: float, figure: str) -> None:
    common.note(samples.line())
    for error in samples.errors[:3]:
        common.note(f"  error: {error}")
    if not samples.ms:
        summary.check(f"{figure} p95", f"no 200 answer ({len(samples.errors)} errors)", f"< {budget_ms:g} ms", False)
        return
    p95 = pct(samples.ms, 95)
    ok = p95 < budget_ms and not samples.errors
    value = f"{p95:.1f} ms (p50 {pct(samples.ms, 50):.1f})" + (
        f", {len(samples.errors)} errors" if samples.errors else ""
    )
    summary.check(f"{figure} p95", value, f"< {budget_ms:g} ms", ok)
    summary.info(f"  {figure}: queries per request p50 / max", f"{pct(samples.queries, 50)} / {max(samples.queries)}")


# --- 3. The pages ------------------------------------------------------------------------

TAG = re.compile(r"<[a-zA-Z][^>]*\bhx-get\s*=[^>]*>", re.S)
ATTR = re.compile(r"""\b(hx-get|hx-trigger)\s*=\s*("([^"]*)"|'([^']*)')""", re.S)
LAZY_TRIGGERS = ("load", "revealed", "intersect")


def panels(content: bytes) -> list[tuple[str, str]]:
    """(URL, trigger) of every element that fetches itself when shown."""
    found = []
    for tag in TAG.findall(content.decode("utf-8", "replace")):
        attrs = {
            m.group(1): html.unescape(m.group(3) if m.group(3) is not None else m.group(4)) for m in ATTR.finditer(tag)
        }
        trigger = attrs.get("hx-trigger", "")
        url = attrs.get("hx-get", "")
        if url and any(re.search(rf"(^|[\s,]){word}\b", trigger) for word in LAZY_TRIGGERS):
            found.append((url, trigger))
    return found


def panel_label(url: str, ext: str | None) -> str:
    label = url.replace(ext, "<external_id>") if ext else url
    return re.sub(r"(?<=/)\d+(?=/|$|\?)", "<id>", label)


def time_page(
    summary: common.Summary,
    *,
    figure: str,
    user,
    paths: list[tuple[str, str | None]],
    warmup: int,
) -> dict[str, Samples]:
    """Each path in turn (with the panels it loads); ``paths`` holds (path, external id or None).

    Returns the samples by figure: the page's (``figure``), then each panel's
    (``"<figure>, panel <label>"``), as reported.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    common.heading(f"{figure}: {paths[0][0] if len(paths) == 1 or paths[0][1] is None else '/accounts/<external_id>/'}")
    require_url(paths[0][0])
    client = Client()
    client.force_login(user)
    page = Samples(figure)
    panel_samples: dict[str, Samples] = {}
    panel_order: list[str] = []
    for i, (path, ext) in enumerate(paths):
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(path)
            ms = (time.perf_counter() - started) * 1000
        measured = i >= warmup
        if response.status_code != 200:
            if measured:
                page.errors.append(f"{path}: HTTP {response.status_code} {response.get('Location', '')}")
            continue
        if measured:
            page.ms.append(ms)
            page.queries.append(len(ctx.captured_queries))
        for url, trigger in panels(response.content):
            label = panel_label(url, ext)
            if label not in panel_samples:
                panel_samples[label] = Samples(f"  panel {label} (hx-trigger {trigger!r})")
                panel_order.append(label)
            with CaptureQueriesContext(connection) as ctx:
                started = time.perf_counter()
                answer = client.get(url, headers={"HX-Request": "true", "HX-Current-URL": f"http://testserver{path}"})
                ms = (time.perf_counter() - started) * 1000
            if not measured:
                continue
            if answer.status_code != 200:
                panel_samples[label].errors.append(f"{url}: HTTP {answer.status_code}")
                continue
            panel_samples[label].ms.append(ms)
            panel_samples[label].queries.append(len(ctx.captured_queries))
    report(page, summary, PAGE_BUDGET_MS, figure)
    if not panel_order:
        common.note("  no htmx panels loaded on load/revealed/intersect in its HTML")
    by_figure = {figure: page}
    for label in panel_order:
        report(panel_samples[label], summary, PAGE_BUDGET_MS, f"{figure}, panel {label}")
        by_figure[f"{figure}, panel {label}"] = panel_samples[label]
    return by_figure


def time_pages(args: argparse.Namespace, summary: common.Summary, external_ids: list[str], failures: list) -> None:
    people = users()
    by_id = {u.id: u for u in people.values()}
    leader = people[LEADER]
    as_of = args.as_of
    csm = None
    Alert = alert_model()
    if Alert is not None and "owner" in {f.name for f in Alert._meta.get_fields()}:
        from django.db.models import Count

        state = alert_state(as_of)
        flt = {"state__in": state["open_states"]} if "open_states" in state else {}
        rows = (
            Alert.objects.filter(owner__role="csm", **flt)
            .values("owner")
            .annotate(n=Count("pk"))
            .order_by("-n", "owner")[:1]
        )
        if rows:
            csm = by_id.get(rows[0]["owner"])
            common.note(f"CSM with the most open alerts: {csm.email} ({rows[0]['n']} alerts)")
    if csm is None:
        person, n = current_owner_counts(["csm"], as_of)[0]
        csm = by_id[person]
        common.note(f"CSM with the biggest book (alerts not attributable to owners): {csm.email} ({n} accounts)")
    person, n = current_owner_counts(["land_ae", "expand_ae"], as_of)[0]
    ae = by_id[person]
    common.note(f"AE with the biggest book: {ae.email} ({n} accounts on {as_of})")

    rng = random.Random(f"{args.seed}:pages")
    count = args.warmup + args.page_requests
    plan = [
        ("triage queue /alerts/ (CSM)", csm, [("/alerts/", None)] * count),
        ("triage queue /alerts/ (leader)", leader, [("/alerts/", None)] * count),
        ("AE book /book/", ae, [("/book/", None)] * count),
        (
            "account page (leader)",
            leader,
            [(f"/accounts/{ext}/", ext) for ext in (rng.choice(external_ids) for _ in range(count))],
        ),
    ]
    for figure, user, paths in plan:
        run_part(failures, summary, figure, lambda f=figure, u=user, p=paths: time_page(
            summary, figure=f, user=u, paths=p, warmup=args.warmup
        ))  # fmt: skip


# --- Main --------------------------------------------------------------------------------


def run_part(failures: list, summary: common.Summary, figure: str, fn) -> None:
    """Run one timed part: missing code is a FAIL row; an exception is printed and remembered."""
    try:
        fn()
    except Missing as exc:
        common.note(f"MISSING: {exc}")
        summary.check(figure, f"missing: {exc}", "code under test present", False)
    except Exception as exc:  # noqa: BLE001 - the code under test crashed: show it, carry on
        traceback.print_exc()
        failures.append(figure)
        summary.check(figure, f"crashed: {type(exc).__name__}: {exc}"[:120], "no exception", False)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.metrics_refresh", description=__doc__.split("\n\n")[0])
    metrics_data.add_data_arguments(parser)
    parser.add_argument("--api-requests", type=int, default=300, help="Metrics API requests (default 300).")
    parser.add_argument("--page-requests", type=int, default=100, help="Requests per page (default 100).")
    parser.add_argument("--warmup", type=int, default=3, help="Untimed requests before each series (default 3).")
    parser.add_argument("--skip-refresh", action="store_true", help="Time the API and pages on what is stored.")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE of refresh statements over 1 s.")
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    common.install_exit_on_sigterm()
    # Requests go through django.test.Client, whose host is "testserver".
    common.allow_test_client_host()
    summary = common.Summary(NAME)

    _url, generated = metrics_data.prepare_database(args)
    rows = common.sql_one("SELECT count(*) FROM usage_dailyrollup")[0]
    if generated is not None:
        summary.info("data generation (bench.metrics_data)", f"{generated.total_s:.0f} s, {rows:,} DailyRollup rows")
    else:
        summary.info("data (reused)", f"{rows:,} DailyRollup rows")
    common.note(common.code_version())
    common.note(common.server_settings())

    from accounts.models import Account

    external_ids = list(Account.objects.order_by("external_id").values_list("external_id", flat=True))
    failures: list[str] = []
    if not args.skip_refresh:
        run_part(failures, summary, "refresh_metrics", lambda: time_refresh(args, summary))
    run_part(failures, summary, "metrics API", lambda: time_api(args, summary, external_ids))
    run_part(failures, summary, "pages", lambda: time_pages(args, summary, external_ids, failures))

    summary.print()
    summary.write_json(args.summary_json)
    if failures:
        print(f"the code under test raised in: {', '.join(failures)} (tracebacks above)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
