"""What a chart page costs a browser the first time: bytes over the wire and time to drawn.

    python -m bench.page_weight [--reuse]

Seeds the demo company (``seed_demo``, as ``make run``) in ``<bench database>_pages``
(``revops_bench_pages``; ``--reuse`` keeps one already seeded), collects the static files
as production does (``DEBUG=false``: WhiteNoise's compressed manifest, .gz and .br beside
each file, hashed names served with a year's ``Cache-Control: immutable``), starts
``gunicorn revops.wsgi`` on a free port and drives headless Chromium: the leader signs in
once, then every page is opened in a fresh browser context (an empty cache) and timed
from navigation to its last chart drawn, and the bytes of every response the page loads
(bodies as transferred, compressed, plus headers) are summed. Each page is then opened
again in the same context (the cache warm) for the repeat-visit figure.

Budget (issue): every page's first load < 1.5 s and < 1 MB on this machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import common

NAME = "page_weight"
BUDGET_S = 1.5
BUDGET_BYTES = 1_000_000
LEADER = "leader@example.com"
PASSWORD = "revops-demo"  # noqa: S105 - the documented demo login (demo/data.py)


def pages() -> list[tuple[str, str]]:
    """(label, path) of every page with charts, plus the home page; paths from the data."""
    from accounts.models import Account
    from reviews.models import Review

    account = Account.objects.filter(parent__isnull=True).order_by("external_id").first()
    review = Review.objects.order_by("-month").first()
    rows = [
        ("home", "/"),
        ("company metrics", "/metrics/"),
        ("account page", f"/accounts/{account.external_id}/"),
        ("forecast", "/forecasts/"),
        ("waterfall", "/planning/waterfall/"),
        ("cohorts", "/planning/cohorts/"),
        ("deal desk", "/planning/deal-desk/"),
        ("product usage", "/reviews/analysis/product/"),
    ]
    if review is not None:
        rows.append(("review", f"/reviews/{review.month:%Y-%m}/"))
    return rows


def start_gunicorn(url: str, port: int, static_root: str, log_path: Path) -> subprocess.Popen:
    env = common.bench_env(
        url,
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1",
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        STATIC_ROOT=static_root,
    )
    gunicorn = Path(sys.executable).parent / "gunicorn"
    cmd = [str(gunicorn), "revops.wsgi", "--workers", "2", "--threads", "4", "--bind", f"127.0.0.1:{port}"]
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=common.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return proc
        except OSError:
            time.sleep(0.3)
    proc.terminate()
    raise RuntimeError("gunicorn did not answer /health within 60 s")


def measure(page, url: str) -> tuple[float, int, int]:
    """(seconds from navigation to the later of the last response and the last chart
    drawn, bytes transferred, responses) for one navigation. Times are the browser's own
    (Resource Timing and ``performance.now()``), not the wait for the network to go idle."""
    finished: list = []

    def done(request) -> None:
        finished.append(request)

    page.on("requestfinished", done)
    page.goto(url, wait_until="load")
    drawn_ms = page.wait_for_function(
        "() => [...document.querySelectorAll('[data-chart]')].every(el => el.dataset.drawn === '1')"
        " && performance.now()",
        timeout=30_000,
    ).json_value()
    page.wait_for_load_state("networkidle")  # the htmx panels a page loads after it
    drawn_ms = max(
        drawn_ms,
        page.evaluate(
            "() => [...document.querySelectorAll('[data-chart]')].every(el => el.dataset.drawn === '1') ? 0 : Infinity"
        ),
    )
    origin = page.evaluate("() => performance.timeOrigin")
    page.remove_listener("requestfinished", done)
    total, net_end = 0, 0.0
    for request in finished:
        measured = request.sizes()
        total += max(0, measured["responseBodySize"]) + max(0, measured["responseHeadersSize"])
        timing = request.timing
        if timing["responseEnd"] > 0:
            net_end = max(net_end, timing["startTime"] + timing["responseEnd"] - origin)
    return max(drawn_ms, net_end) / 1000, total, len(finished)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.page_weight", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reuse", action="store_true", help="Keep a database already seeded.")
    parser.add_argument("--summary-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    summary = common.Summary(NAME)
    url = common.database_url("_pages")
    env = common.bench_env(url)
    if not args.reuse:
        common.create_database(url, drop_first=True)
    common.setup(url)
    from accounts.models import Account

    if not Account.objects.exists():
        common.heading("seeding the demo company")
        subprocess.run([sys.executable, "manage.py", "seed_demo"], cwd=common.BASE_DIR, env=env, check=True)
    static_root = tempfile.mkdtemp(prefix="revops-static-")
    common.heading("collectstatic as production does (compressed manifest)")
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=common.BASE_DIR,
        env={**env, "DEBUG": "false", "STATIC_ROOT": static_root},
        check=True,
    )
    bundle = next(Path(static_root, "vendor").glob("plotly-finance-3.7.0.min.*.js"))  # the hashed name
    for suffix in ("", ".gz", ".br"):
        path = Path(f"{bundle}{suffix}")
        if path.exists():
            summary.info(f"plotly bundle{suffix or ' (raw)'}", f"{path.stat().st_size:,} B")
    port = free_port()
    log_path = Path(tempfile.gettempdir()) / "bench-page-weight-gunicorn.log"
    rows = pages()
    proc = start_gunicorn(url, port, static_root, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"))
            login = browser.new_context()
            page = login.new_page()
            page.goto(f"{base}/auth/login/")
            form = page.locator("main form").filter(has=page.locator("input[name=login]"))
            form.locator("input[name=login]").fill(LEADER)
            form.locator("input[name=password]").fill(PASSWORD)
            form.locator("button[type=submit]:not([form])").click()
            page.wait_for_url(f"{base}/")
            state = login.storage_state()
            login.close()
            common.heading("first load (empty cache) and repeat visit")
            worst_s, worst_b = 0.0, 0
            for label, path in rows:
                context = browser.new_context(storage_state=state)
                page = context.new_page()
                first_s, first_b, responses = measure(page, base + path)
                warm_s, warm_b, _ = measure(page, base + path)
                context.close()
                worst_s, worst_b = max(worst_s, first_s), max(worst_b, first_b)
                common.note(
                    f"{label:<16} {path:<40} first {first_s:5.2f} s {first_b / 1e6:5.2f} MB "
                    f"({responses} responses) · repeat {warm_s:5.2f} s {warm_b / 1e6:5.2f} MB"
                )
                summary.check(
                    f"{label}: first load",
                    f"{first_s:.2f} s, {first_b / 1e6:.2f} MB",
                    "< 1.5 s, < 1 MB",
                    first_s < BUDGET_S and first_b < BUDGET_BYTES,
                )
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    summary.print()
    summary.write_json(args.summary_json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
