"""Every HTML form post and every file upload of the product, fuzzed with Hypothesis.

Each form is posted by someone allowed to use it, with generated input: valid values with
one, two or all of the fields spoiled (NUL, huge, negative and non-finite numbers, far
dates, unicode, very long text, a field sent twice or not at all), or nothing valid at
all; uploads get random bytes, CSV files with hostile cells and wrong shapes, and YAML or
JSON plan documents mutated from the documented example. For every example:

1. the answer is never a 5xx (``Client(raise_request_exception=False)``);
2. a refused input is answered with what is wrong: a form error shown on the page, an
   error message for the page the redirect leads to, an import job's list of line,
   column and reason, or a 4xx whose body says it;
3. a refused input writes nothing: the rows (their number and their content) of every
   table the form writes are the same before and after (pghistory's event tables aside).

Which forms there are comes from the URL patterns: every pattern that takes a POST must
have a property here (``test_every_url_pattern_that_takes_a_post_is_fuzzed_here``). A
redirect is followed: the page it leads to is no 5xx either and shows the message.

Each test builds the demo world of ``test_authorization_matrix._world`` once (the deal
desk's builds one with a year of usage, which it needs; the SSO start form, posted signed
out, needs only an identity provider) and runs its examples against it, each in a
savepoint rolled back afterwards, so that examples never see each other's writes. Import
jobs run synchronously (``import_job_run``). The data connections talk to real local
servers: an S3 server (moto), a fake Stripe over HTTP, a second PostgreSQL database as the
warehouse, and a closed port (127.0.0.1:9) where a place must fail at once. Generation is derandomized
and failures are not shrunk, so a run is reproducible and bounded in time. The totals
(cases, refused, accepted, server errors, per form) go to test-artifacts/fuzz-summary.json.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import operator
import re
import socket
import traceback
from collections import Counter
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml
from django import forms
from django.contrib.messages import constants, get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.signals import got_request_exception
from django.db import connection, transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.html import escape, strip_tags
from hypothesis import HealthCheck, Phase, example, given, note, settings
from hypothesis import strategies as st

from revops.models import Role, User
from tests.integrations.warehouse_support import warehouse, warehouse_dsn  # noqa: F401 (the warehouse database)
from tests.revops.test_authorization_matrix import _world

# One worker runs the whole module, in order, so the last test sees every property's totals.
pytestmark = [pytest.mark.django_db, pytest.mark.slow, pytest.mark.xdist_group("fuzz")]

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "test-artifacts" / "fuzz-summary.json"
FUZZ: dict = {"cases": 0, "server_errors": 0, "refused": 0, "accepted": 0, "forms": {}}


def fuzzed(examples: int):
    """Hypothesis settings of every property here: reproducible, no deadline, no example
    database, and no shrinking: a failure is reported as found (with the post that caused
    it), since shrinking through requests against a whole world takes minutes."""
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        print_blob=False,
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# --- Hostile values ----------------------------------------------------------------------

# Any code point a browser can send (a lone surrogate cannot be encoded as UTF-8 at all);
# plausible text has no control characters either.
TEXT = st.characters(blacklist_categories=("Cs",))
PLAIN = st.characters(blacklist_categories=("Cs", "Cc"))
HOSTILE = (
    "",
    " ",
    "\x00",
    "a\x00b",
    "0",
    "-0",
    "-1",
    "-150.5",
    "1e400",
    "-1e400",
    "1e-400",
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-inf",
    "9" * 40,
    "99999999999999999999.99",
    "0.0000001",
    "1,000.50",
    "$5",
    "−150",
    "²",
    "١٢٣",
    "Ⅻ",
    "0001-01-01",
    "9999-12-31",
    "2026-02-30",
    "2026-13-01",
    "0000-00-00",
    "31/12/2026",
    "<script>alert(1)</script>",
    "{{ 7|add:7 }}",
    "' OR 1=1 --",
    "%s%n%x",
    "\u202egnp.exe",
    "🙂🙂🙂",
    "Zoë Ünïcødé 名前",
    "null",
    "true",
    "[]",
    "{}",
    "\r\n",
    "\t",
    "=cmd|' /C calc'!A0",
)
LONG = st.builds(operator.mul, st.text(TEXT, min_size=1, max_size=6), st.integers(700, 4000))
JUNK = st.one_of(st.sampled_from(HOSTILE), st.text(TEXT, max_size=30), LONG)
NUMBER_JUNK = st.one_of(
    st.sampled_from(HOSTILE),
    st.integers(-(10**30), 10**30).map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
)
DATE_JUNK = st.one_of(
    st.sampled_from(("0001-01-01", "9999-12-31", "2026-02-30", "2026-13-01", "0000-00-00", "2026-1-1", "26-01-01")),
    st.dates().map(str),
    JUNK,
)
OMIT = object()  # a field left out of the post


def money(low: int = 0, high: int = 10**9) -> st.SearchStrategy[str]:
    return st.decimals(min_value=low, max_value=high, places=2).map(str)


def fraction() -> st.SearchStrategy[str]:
    return st.decimals(min_value=Decimal("0.01"), max_value=Decimal("0.99"), places=2).map(str)


def days_from(today: dt.date, low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda days: (today + dt.timedelta(days=days)).isoformat())


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(strategy, st.just(""), st.just(OMIT))


def ids(values: Iterable) -> st.SearchStrategy[str]:
    return st.sampled_from([str(v) for v in values])


@st.composite
def form(draw, valid: dict[str, st.SearchStrategy], junk: dict[str, st.SearchStrategy] | None = None) -> dict:
    """A form's fields: valid values, then none, one, two or all of them spoiled."""
    data = {name: draw(strategy) for name, strategy in valid.items()}
    names = list(valid)
    spoiled = draw(st.sampled_from((0, 0, 1, 1, 2, len(names))))
    for name in draw(st.permutations(names))[:spoiled]:
        hostile = (junk or {}).get(name, JUNK)
        how = draw(st.sampled_from(("hostile", "hostile", "missing", "twice")))
        if how == "missing":
            data[name] = OMIT
        elif how == "twice":
            data[name] = draw(st.lists(st.one_of(hostile, valid[name]), min_size=2, max_size=3))
        else:
            data[name] = draw(hostile)
    if draw(st.integers(0, 9)) == 0:
        data[draw(st.text(TEXT, max_size=12))] = draw(JUNK)  # a field no form has
    return _posted(data)


def _posted(data: dict) -> dict:
    out = {}
    for name, value in data.items():
        if isinstance(value, list):
            value = [v for v in value if v is not OMIT]
        if value is not OMIT:
            out[name] = value
    return out


# --- One example: post, judge the answer, compare the rows -------------------------------


class _Undo(Exception):
    pass


@contextmanager
def rolled_back():
    """Run an example in a savepoint that is always rolled back: the world stays as built."""
    try:
        with transaction.atomic():
            yield
            raise _Undo
    except _Undo:
        pass


def fingerprint(tables: Sequence[str]) -> dict[str, tuple[int, int]]:
    """Rows and a checksum of their content, per table: any insert, update or delete shows."""
    quote = connection.ops.quote_name
    # Table names come from this module's lists (model metadata), never from input.
    sql = " UNION ALL ".join(
        f"SELECT %s, count(*), coalesce(sum(hashtext(t::text)::bigint), 0) FROM {quote(table)} t"  # noqa: S608
        for table in tables
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(tables))
        return {name: (rows, int(checksum)) for name, rows, checksum in cursor.fetchall()}


def tables_of(*models_or_names) -> tuple[str, ...]:
    return tuple(m if isinstance(m, str) else m._meta.db_table for m in models_or_names)


_EXCEPTIONS: list[str] = []


def _keep_exception(sender, request=None, **kwargs) -> None:
    """The traceback behind a 500, for the failure message (the client only sees the 500)."""
    _EXCEPTIONS[:] = [*_EXCEPTIONS[-4:], traceback.format_exc()]


got_request_exception.connect(_keep_exception, dispatch_uid="tests.revops.test_fuzz_inputs")


@dataclass
class Answer:
    status: int
    refused: bool
    reasons: list[tuple[str, str]] = field(default_factory=list)  # (where it is said, what)
    done: list[str] = field(default_factory=list)
    page: str = ""
    location: str = ""


def _context(response) -> dict:
    context = getattr(response, "context", None)
    if context is None:
        return {}
    values: dict = {}
    for one in context if isinstance(context, list) else [context]:
        values.update(one.flatten())
    return values


def judge(response, *, htmx: bool) -> Answer:
    """What the answer says: refused (and why) or done."""
    status = response.status_code
    page = "" if response.streaming else response.content.decode("utf-8", "replace")
    said = list(get_messages(response.wsgi_request))
    reasons = [("message", str(m)) for m in said if m.level >= constants.ERROR]
    done = [str(m) for m in said if m.level < constants.ERROR]
    context = _context(response)
    for value in context.values():
        if isinstance(value, forms.BaseForm) and value.is_bound and value.errors:
            reasons += [("page", str(e)) for errors in value.errors.values() for e in errors]
    for key in ("error", "row_error"):
        if isinstance(context.get(key), str) and context[key].strip():
            reasons.append(("page", context[key]))
    report = context.get("report")
    if report is not None and getattr(report, "errors", None):
        reasons += [("page", e["reason"]) for e in report.errors]
    if 400 <= status < 500 and not reasons:
        text = " ".join(strip_tags(page).split())
        if text:
            reasons.append(("body", text[:300]))
    # A form post answered with a page (not a redirect) outside htmx is the form again: refused.
    refused = status >= 400 or bool(reasons) or (status == 200 and not htmx)
    return Answer(status, refused, reasons, done, page, response.get("Location", ""))


def _shown(reason: str, page: str) -> bool:
    flat = " ".join(reason.split())
    return any(" ".join(r.split()) in " ".join(page.split()) for r in (escape(flat), flat, escape(reason), reason))


def post(client: Client, path: str, data: dict, *, htmx: bool = False, urlencoded: bool = False, referer: str = ""):
    client.cookies.pop("messages", None)  # messages of an earlier example must not count
    headers = {"HX-Request": "true"} if htmx else {}
    if referer:
        headers["Referer"] = referer
    if urlencoded:
        body = urlencode(data, doseq=True)
        return client.post(path, body, content_type="application/x-www-form-urlencoded", headers=headers)
    return client.post(path, data, headers=headers)


def count(form_name: str, *, server_error: bool = False, refused: bool = False) -> None:
    outcome = "server errors" if server_error else "refused" if refused else "accepted"
    FUZZ["cases"] += 1
    FUZZ["server_errors" if server_error else outcome] += 1
    FUZZ["forms"].setdefault(form_name, Counter())[outcome] += 1


def no_server_error(form_name: str, response) -> None:
    if response.status_code >= 500:
        count(form_name, server_error=True)
        cause = _EXCEPTIONS[-1] if _EXCEPTIONS else "(no exception recorded)"
        pytest.fail(f"{form_name}: {response.status_code} from {response.wsgi_request.path}\n{cause}")


# Django's own error pages: a title, nothing about what was wrong.
GENERIC = re.compile(r"(?:(?:Bad Request|Forbidden|Not Found|Server Error|Method Not Allowed) \(\d{3}\)\s*)+")


def refused_with_reason(form_name: str, answer: Answer) -> None:
    """The answer says what is wrong, where the person will read it."""
    assert answer.reasons, f"{form_name}: refused ({answer.status}) without saying why:\n{answer.page[:2000]}"
    for where, reason in answer.reasons:
        assert reason.strip(), f"{form_name}: an empty reason ({where})"
        assert not GENERIC.fullmatch(reason.strip()), f"{form_name}: a generic page ({reason}) says nothing"
    on_page = [reason for where, reason in answer.reasons if where == "page"]
    if on_page:
        assert any(_shown(reason, answer.page) for reason in on_page), (
            f"{form_name}: the reasons {on_page} are not on the page it answered:\n{answer.page[:3000]}"
        )
    if 300 <= answer.status < 400:
        assert any(where == "message" for where, _ in answer.reasons), f"{form_name}: redirected without a message"


def check_post(
    form_name: str,
    client: Client,
    path: str,
    data: dict,
    *,
    tables: Sequence[str],
    htmx: bool = False,
    urlencoded: bool = False,
    referer: str = "",
    answers_with_a_page: bool = False,
) -> Answer:
    """One example of a form: post it, and hold the three properties. ``answers_with_a_page``:
    the action's answer is a page of its own (test & preview), so a 200 is not the form again."""
    note(f"{form_name}: POST {path} htmx={htmx} urlencoded={urlencoded} referer={referer!r} {data!r}"[:4000])
    before = fingerprint(tables)
    response = post(client, path, data, htmx=htmx, urlencoded=urlencoded, referer=referer)
    no_server_error(form_name, response)
    answer = judge(response, htmx=htmx or answers_with_a_page)
    count(form_name, refused=answer.refused)
    if answer.refused:
        refused_with_reason(form_name, answer)
        after = fingerprint(tables)
        assert after == before, f"{form_name}: refused ({answer.reasons}) but wrote {_changed(before, after)}"
    if 300 <= answer.status < 400 and answer.location.startswith("/"):
        landed(form_name, client, answer)
    return answer


def landed(form_name: str, client: Client, answer: Answer) -> None:
    """The page a redirect leads to is no 5xx either, and shows the error message, if any."""
    landing = client.get(answer.location)
    no_server_error(form_name, landing)
    page = landing.content.decode("utf-8", "replace")
    said = [reason for where, reason in answer.reasons if where == "message"]
    assert not said or any(_shown(reason, page) for reason in said), (
        f"{form_name}: the message {said} is not on {answer.location}, where the redirect leads"
    )


def _changed(before: dict, after: dict) -> list[str]:
    return [f"{t}: {before[t][0]} → {after[t][0]} rows" for t in before if before[t] != after[t]]


def summary_written() -> dict:
    data = {
        "cases": FUZZ["cases"],
        "server_errors": FUZZ["server_errors"],
        "refused": FUZZ["refused"],
        "accepted": FUZZ["accepted"],
        "forms": {name: dict(sorted(outcomes.items())) for name, outcomes in sorted(FUZZ["forms"].items())},
    }
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps(data, indent=2) + "\n")
    return data


@pytest.fixture
def totals():
    """The totals so far, written after each test (the last test checks them)."""
    yield
    summary_written()


@pytest.fixture
def world(totals, with_totp, settings, tmp_path):
    """The demo company of the authorization matrix, a signed-in client per role and the
    values the forms choose from."""
    from accounts.models import Account, Contract
    from revops.clock import today_utc
    from usage.models import Meter, ProductRelease

    settings.MEDIA_ROOT = tmp_path  # uploaded files are kept there while a job runs
    w = _world()
    clients = {}
    for role in Role.values:
        person = w["people"][role]
        if not person.authenticator_set.exists():
            with_totp(person)  # finance and admin must have their second factor
        clients[role] = Client(raise_request_exception=False)
        clients[role].force_login(person)
    w["clients"] = clients
    w["accounts"] = list(Account.objects.order_by("external_id").values_list("external_id", flat=True))
    w["emails"] = list(User.objects.order_by("email").values_list("email", flat=True))
    w["user_ids"] = list(User.objects.order_by("pk").values_list("pk", flat=True))
    w["meters"] = list(Meter.objects.order_by("key").values_list("key", flat=True))
    w["contracts"] = list(Contract.objects.order_by("external_id").values_list("external_id", flat=True))
    w["releases"] = list(ProductRelease.objects.order_by("name").values_list("name", flat=True))
    w["today"] = today_utc()
    return w


# --- Which patterns take a POST ------------------------------------------------------------

# Every URL pattern (by name) a person posts a form or a file to; each has a property below.
FUZZED = frozenset(
    {
        # accounts: the account page
        "accounts:activities",
        "accounts:plan",
        # revops: saved views of any list
        "saved_view_save",
        "saved_view_delete",
        # usage: alert triage, thresholds, API keys, data in
        "usage:alert_action",
        "usage:alert_bulk",
        "usage:alert_settings",
        "usage:api_keys",
        "usage:api_key_revoke",
        "usage:imports",
        "usage:quarantine_replay",
        # comp: plan documents, statements, inquiries
        "comp:plan_upload",
        "comp:statement_approve",
        "comp:approve_month",
        "comp:mark_paid",
        "comp:inquiry_raise",
        "comp:inquiry_answer",
        # comp: plan what-if drafts, their runs and publishing
        "comp:whatif_new",
        "comp:whatif_draft",
        "comp:whatif_run_new",
        "comp:whatif_publish",
        # forecasting: the deal desk
        "forecasting:deal_desk_store",
        # integrations: CRM connections, their mapping, run now
        "integrations:connections",
        "integrations:mapping",
        "integrations:run",
        # integrations: Stripe connections, their domain table, sync now
        "integrations:stripe_connections",
        "integrations:stripe_domain_add",
        "integrations:stripe_domain_remove",
        "integrations:stripe_sync",
        # integrations: warehouse sources, test & preview, pull now
        "integrations:warehouse_sources",
        "integrations:warehouse_source",
        "integrations:warehouse_preview",
        "integrations:warehouse_pull_now",
        # webhooks: endpoints, secret rotation, test events, replays
        "webhooks:endpoints",
        "webhooks:edit",
        "webhooks:rotate",
        "webhooks:test",
        "webhooks:replay",
        # exports: targets, test connection, run now
        "exports:targets",
        "exports:target",
        "exports:test",
        "exports:run",
        # sso: the login page's "continue with single sign-on" (posted signed out)
        "sso:start",
        # reviews: the monthly review
        "reviews:open",
        "reviews:pattern_new",
        "reviews:pattern_edit",
        "reviews:decision_new",
        "reviews:decision_edit",
        "reviews:action_add",
        "reviews:action_status",
        "reviews:remove",
        "reviews:finalize",
    }
)
# Patterns that take a POST but not from an HTML form.
NOT_FORMS = {
    "api-v1:post_events": "JSON usage events from API keys (tests/usage: CloudEvents, schemathesis)",
    # django-ninja's schema pages answer any method the same way; they write nothing.
    "api-v1:openapi-json": "the OpenAPI document",
    "api-v1:openapi-view": "the OpenAPI browser",
    "api-v1:api-root": "ninja's root, a 404 to every method",
    "stripe_webhook": "Stripe's signed JSON events (tests/integrations/test_stripe_webhooks.py: signatures, replays)",
}
# SCIM 2.0: JSON for an identity provider's bearer token (every method is a 401 without one),
# tested by tests/revops/test_scim.py, scim2-tester's checks included.
NOT_FORMS |= {
    f"sso:scim_{name}": f"SCIM 2.0 {what} (JSON, bearer token; tests/revops/test_scim.py)"
    for name, what in (
        ("config", "ServiceProviderConfig"),
        ("resource_types", "ResourceTypes"),
        ("resource_type", "a ResourceType"),
        ("schemas", "Schemas"),
        ("schema", "a Schema"),
        ("users", "Users: list and create"),
        ("user", "a User: read, replace, patch, delete"),
        ("groups", "Groups: list and create"),
        ("group", "a Group: read, replace, patch, delete"),
        ("search", ".search (POST of a SearchRequest)"),
        ("not_found", "404 for any other path"),
    )
}


# Not ours to fuzz: Django's admin and allauth's login and second-factor pages.
FOREIGN_PREFIXES = ("admin/", "auth/")
_CONVERTED = re.compile(r"<(?:[^>:]+:)?([^>]+)>")


def project_patterns(resolver: URLResolver | None = None, prefix: str = "", namespace: str = ""):
    """(name, a path it matches) for every URL pattern of the project, converters filled in."""
    for pattern in (resolver or get_resolver()).url_patterns:
        route = prefix + str(pattern.pattern)
        if route.startswith(FOREIGN_PREFIXES):
            continue
        if isinstance(pattern, URLResolver):
            inner = namespace + (f"{pattern.namespace}:" if pattern.namespace else "")
            yield from project_patterns(pattern, route, inner)
        elif isinstance(pattern, URLPattern):
            converters = getattr(pattern.pattern, "converters", {})

            def sample(match, converters=converters) -> str:
                regex = converters[match.group(1)].regex
                return next(v for v in ("1", "x", "2026-01") if re.fullmatch(regex, v))

            yield namespace + (pattern.name or route), "/" + _CONVERTED.sub(sample, route)


def test_every_url_pattern_that_takes_a_post_is_fuzzed_here(make_user, with_totp):
    """A PUT to every pattern says which methods it takes (405 with Allow); a view that
    takes any method counts as taking a POST. Each must be in FUZZED (or not be a form)."""
    admin = make_user(Role.ADMIN)
    with_totp(admin)
    client = Client(raise_request_exception=False)
    client.force_login(admin)

    takes_post, methods = set(), {}
    for name, path in project_patterns():
        response = client.put(path)
        methods[name] = response.get("Allow", f"any method ({response.status_code} to a PUT of {path})")
        if response.status_code != 405 or "POST" in response.get("Allow", ""):
            takes_post.add(name)

    print(f"{len(takes_post)} of {len(methods)} URL patterns take a POST")
    unfuzzed = {name: methods[name] for name in takes_post - FUZZED - NOT_FORMS.keys()}
    assert unfuzzed == {}, "URL patterns that take a POST but have no fuzz property here"
    assert takes_post >= FUZZED, "FUZZED names patterns that no longer take a POST"


def test_overfull_posts_to_every_form_are_refused_with_a_reason(make_user, with_totp, totals):
    """More fields, files or text than Django reads: a 400 saying which limit, before any view."""
    from django.apps import apps
    from django.conf import settings as django_settings

    admin = make_user(Role.ADMIN)
    with_totp(admin)
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    forms_ = [(name, path) for name, path in project_patterns() if name in FUZZED]
    ours = ("revops", "accounts", "usage", "comp", "forecasting", "reviews", "integrations", "webhooks", "exports")
    tables = tables_of(*(m for m in apps.get_models() if m._meta.app_label in ours and m._meta.managed))
    fields = django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1
    floods = {
        "fields": lambda: {f"f{i}": "x" for i in range(fields)},
        "files": lambda: {f"file{i}": SimpleUploadedFile(f"{i}.csv", b"x") for i in range(101)},
        "text": lambda: {"notes": "x" * (django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)},
    }

    @fuzzed(15)
    @given(target=st.sampled_from(forms_), flood=st.sampled_from(sorted(floods)), urlencoded=st.booleans())
    def overfull(target, flood, urlencoded):
        name, path = target
        with rolled_back():
            data = floods[flood]()
            answer = check_post(
                f"{name} (too many {flood})",
                client,
                path,
                data,
                tables=tables,
                urlencoded=urlencoded and flood != "files",
            )
            assert answer.status == 400, answer.status

    overfull()


# --- Accounts: the activity log and the account plan ------------------------------------------


def test_account_activity_and_plan_forms_refuse_bad_input_with_a_reason_and_write_nothing(world):
    from accounts.models import AccountPlan, Activity, ActivityKind
    from revops.models import FormSubmission

    w, today = world, world["today"]
    ae, admin = w["clients"][Role.AE], w["clients"][Role.ADMIN]
    tags = st.lists(st.one_of(st.sampled_from(("pricing", "Pricing", " new-workload ")), st.text(TEXT, max_size=45)))
    activity = form(
        {
            "occurred_on": st.one_of(days_from(today, -3000, 1), days_from(today, 2, 9)),
            "kind": st.sampled_from(ActivityKind.values),
            "notes": st.text(TEXT, max_size=200),
            "tags": tags.map(", ".join),
            "submission": st.one_of(st.uuids(version=4).map(str), st.just(OMIT)),
        },
        {"occurred_on": DATE_JUNK, "tags": st.one_of(JUNK, st.just(",".join(["t"] * 11)), st.just("x" * 41))},
    )
    plan = form(
        {
            "usage_baseline": optional(money(0, 10**12)),
            "growth_target_pct": optional(st.decimals(min_value=-120, max_value=1200, places=2).map(str)),
            "expansion_opportunities": st.text(TEXT, max_size=100),
            "value_realization": st.text(TEXT, max_size=100),
            "stakeholders": st.text(TEXT, max_size=100),
            "risks": st.text(TEXT, max_size=100),
            "next_review_on": optional(days_from(today, -400, 400)),
        },
        {"usage_baseline": NUMBER_JUNK, "growth_target_pct": NUMBER_JUNK, "next_review_on": DATE_JUNK},
    )
    activity_tables = tables_of(Activity, FormSubmission)

    @fuzzed(50)
    @given(data=activity, who=st.sampled_from(("ae", "admin")), htmx=st.booleans(), twice=st.booleans())
    def activities(data, who, htmx, twice):
        client, account = (ae, w["own_account"]) if who == "ae" else (admin, w["other_account"])
        path = f"/accounts/{account}/activities/"
        with rolled_back():
            first = check_post("accounts:activities", client, path, data, tables=activity_tables, htmx=htmx)
            if twice and not first.refused and "submission" in data:
                # The same form sent again (a double click, a reload) is applied once.
                before = fingerprint(activity_tables)
                again = check_post("accounts:activities", client, path, data, tables=activity_tables, htmx=htmx)
                assert not again.refused and fingerprint(activity_tables) == before

    @fuzzed(40)
    @given(data=plan, who=st.sampled_from(("ae", "admin")), htmx=st.booleans())
    def account_plan(data, who, htmx):
        client, account = (ae, w["own_account"]) if who == "ae" else (admin, w["other_account"])
        with rolled_back():
            check_post(
                "accounts:plan", client, f"/accounts/{account}/plan/", data, tables=tables_of(AccountPlan), htmx=htmx
            )

    activities()
    account_plan()


# --- Usage: alert triage, alert settings, API keys ----------------------------------------------


def test_alert_actions_settings_api_keys_and_saved_views_refuse_bad_input_with_a_reason_and_write_nothing(world):
    from accounts.models import Segment
    from revops import saved_views
    from revops.models import ApiKey, SavedView
    from usage.access import alerts_visible_to
    from usage.models import Alert, AlertEvent, AlertKind, AlertSettings, AlertState
    from usage.signals.services import PAST_TENSE

    w, today = world, world["today"]
    people = w["people"]
    visible = {
        role: list(alerts_visible_to(people[role], on=today).order_by("pk").values_list("pk", flat=True)[:30])
        for role in (Role.CSM, Role.LEADER, Role.ADMIN)
    }
    csms = list(User.objects.filter(role=Role.CSM).values_list("pk", flat=True))
    pick_ids = st.one_of(ids(w["user_ids"]), st.sampled_from(("²", "١", "9" * 30, "-1", "0")))
    triage = {
        "action": st.sampled_from(sorted(PAST_TENSE)),
        "note": st.text(TEXT, max_size=80),
        "until": optional(days_from(today, -2, 200)),
        "assignee": optional(st.one_of(ids(csms), ids(w["user_ids"]))),
        "kind": optional(st.sampled_from(AlertKind.values)),
        "segment": optional(st.sampled_from(Segment.values)),
        "owner": optional(st.sampled_from(("me", "none", str(people[Role.CSM].pk)))),
        "state": optional(st.sampled_from(["active", *AlertState.values])),
    }
    triage_junk = {"until": DATE_JUNK, "assignee": st.one_of(pick_ids, JUNK), "owner": st.one_of(pick_ids, JUNK)}
    alert_tables = tables_of(Alert, AlertEvent)

    actors = st.sampled_from((Role.CSM, Role.LEADER, Role.ADMIN))
    # "²" is a digit to str.isdigit but not to int: a posted assignee or alert id like it was a 500.
    superscript = {"action": "assign", "assignee": "²", "owner": "²", "alert": ["²", str(w["own_alert"])]}

    @fuzzed(35)
    @given(payload=form(triage, triage_junk), who=actors, pick=st.integers(0, 29), htmx=st.booleans())
    @example(payload=superscript, who=Role.LEADER, pick=0, htmx=False)
    def alert_action(payload, who, pick, htmx):
        alert = w["own_alert"] if who == Role.CSM else visible[who][pick % len(visible[who])]
        with rolled_back():
            check_post(
                "usage:alert_action",
                w["clients"][who],
                f"/alerts/{alert}/act/",
                payload,
                tables=alert_tables,
                htmx=htmx,
            )

    chosen = st.lists(st.one_of(ids(visible[Role.CSM]), ids(visible[Role.ADMIN])), max_size=4, unique=True)

    @fuzzed(25)
    @given(
        payload=form(
            triage | {"alert": chosen}, triage_junk | {"alert": st.lists(st.one_of(pick_ids, JUNK), max_size=3)}
        ),
        who=actors,
        htmx=st.booleans(),
    )
    @example(payload=superscript | {"action": "acknowledge"}, who=Role.CSM, htmx=True)
    def alert_bulk(payload, who, htmx):
        with rolled_back():
            check_post("usage:alert_bulk", w["clients"][who], "/alerts/bulk/", payload, tables=alert_tables, htmx=htmx)

    fractions = ("payout_floor", "clawback_floor", "decline_drop", "plateau_tolerance", "credits_low_fraction")
    pairs = (("escalate_band", "expand_band"), ("included_warn", "included_critical"))
    whole = ("run_rate_days", "plateau_days", "no_usage_days")
    two = st.lists(fraction(), min_size=2, max_size=2, unique=True).map(sorted)
    alert_settings = st.builds(
        lambda ordered, rest: (
            {
                name: value
                for (low, high), (a, b) in zip(pairs, ordered, strict=True)
                for name, value in ((low, a), (high, b))
            }
            | rest
        ),
        st.tuples(two, two),
        st.fixed_dictionaries(
            dict.fromkeys(fractions, fraction())
            | dict.fromkeys(whole, st.integers(1, 200).map(str))
            | {
                "decline_days": st.integers(1, 8).map(str),
                "decline_mad_multiple": st.decimals(min_value=0, max_value=999, places=2).map(str),
                "decline_min_daily_revenue": money(0, 10**9),
            }
        ),
    ).flatmap(
        lambda valid: form({name: st.just(value) for name, value in valid.items()}, dict.fromkeys(valid, NUMBER_JUNK))
    )

    @fuzzed(30)
    @given(data=alert_settings, urlencoded=st.booleans())
    def settings_form(data, urlencoded):
        with rolled_back():
            check_post(
                "usage:alert_settings",
                w["clients"][Role.ADMIN],
                "/system/alert-settings/",
                data,
                tables=tables_of(AlertSettings),
                urlencoded=urlencoded,
            )

    api_key = form(
        {
            "name": st.text(TEXT, min_size=1, max_size=120),
            "scopes": st.lists(st.sampled_from(ApiKey.Scope.values), min_size=1, max_size=2, unique=True),
            "reads_as": optional(ids(w["user_ids"])),
            "rate_limit_per_minute": st.integers(1, 10**6).map(str),
        },
        {"reads_as": st.one_of(pick_ids, JUNK), "rate_limit_per_minute": NUMBER_JUNK},
    )

    @fuzzed(30)
    @given(data=api_key, who=st.sampled_from((Role.FINANCE, Role.ADMIN)))
    def api_keys(data, who):
        with rolled_back():
            check_post("usage:api_keys", w["clients"][who], "/data/api-keys/", data, tables=tables_of(ApiKey))

    @fuzzed(10)
    @given(key=st.one_of(st.just(w["key"]), st.integers(0, 2**63 - 1)), data=form({"x": JUNK}))
    def api_key_revoke(key, data):
        with rolled_back():
            check_post(
                "usage:api_key_revoke",
                w["clients"][Role.FINANCE],
                f"/data/api-keys/{key}/revoke/",
                data,
                tables=tables_of(ApiKey),
            )

    # Saved views: a list's query string kept under a name, taken from the page posting it.
    lists = {key: reverse(name) for key, name in saved_views.LISTS.items()}
    params = st.sampled_from(("kind", "segment", "owner", "state", "sort", "band", "q", "person", "page", "scope"))
    query = st.lists(
        st.tuples(st.one_of(params, params, st.text(TEXT, max_size=8)), st.one_of(st.text(PLAIN, max_size=12), JUNK)),
        max_size=4,
    ).map(urlencode)

    @fuzzed(30)
    @given(
        payload=form(
            {
                "list": st.sampled_from(sorted(lists)),
                "name": st.text(PLAIN, min_size=1, max_size=80),
                "query": st.one_of(query, st.just(OMIT)),
            },
            {"name": st.one_of(JUNK, st.just("n" * 81), st.just("   ")), "query": st.one_of(JUNK, LONG)},
        ),
        who=st.sampled_from(Role.values),
        sent_from=st.tuples(st.sampled_from(("list", "list", "other host", "other page", "junk", "")), query),
        taken=st.booleans(),
    )
    # The book's person "²" was a 500 on the page the saved view opens.
    @example(
        payload={"list": "book", "name": "n", "query": "person=²"}, who=Role.LEADER, sent_from=("", ""), taken=False
    )
    def save_view(payload, who, sent_from, taken):
        key = payload["list"] if isinstance(payload.get("list"), str) and payload["list"] in lists else "book"
        where, sent_query = sent_from
        referer = {
            "list": f"http://testserver{lists[key]}?{sent_query}",
            "other host": f"http://evil.example{lists[key]}?q=x",
            "other page": "http://testserver/metrics/?x=1",
            "junk": sent_query,
            "": "",
        }[where]
        with rolled_back():
            name = " ".join(str(payload.get("name", "")).split())[:80]
            if name and "\x00" not in name and taken:  # the name is taken already
                SavedView.objects.create(user=people[who], list_key=key, name=name, query="")
            check_post(
                "saved_view_save",
                w["clients"][who],
                "/saved-views/",
                payload,
                tables=tables_of(SavedView),
                referer=referer,
            )

    @fuzzed(15)
    @given(
        who=st.sampled_from(Role.values),
        whose=st.sampled_from(("mine", "mine", "someone else's", "none")),
        data=form({"x": JUNK}),
    )
    def delete_view(who, whose, data):
        with rolled_back():
            owner = people[who] if whose == "mine" else people[Role.ADMIN if who != Role.ADMIN else Role.AE]
            view = SavedView.objects.create(user=owner, list_key="book", name="v", query="sort=name")
            pk = 2**63 - 1 if whose == "none" else view.pk
            check_post(
                "saved_view_delete", w["clients"][who], f"/saved-views/{pk}/delete/", data, tables=tables_of(SavedView)
            )

    alert_action()
    alert_bulk()
    settings_form()
    api_keys()
    api_key_revoke()
    save_view()
    delete_view()


# --- Imports: every kind of CSV file, and the quarantine replay -----------------------------

CELL_JUNK = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(TEXT, max_size=20),
    LONG,
    st.sampled_from(('"quoted, with a comma"', "two\nlines", "a\rb", '"', "'", ";", "|", "-", ":")),
)
FILE_NAMES = st.one_of(
    st.sampled_from(("data.csv", "DATA.CSV", "data.txt")),
    st.sampled_from(("data.xlsx", "noextension", "../../etc/passwd.csv", "名前.csv", ".csv", "a" * 300 + ".csv")),
    st.sampled_from(("a\x00b.csv", "nul\x00.yaml", "tab\tname.csv", "new\nline.csv", 'quote".csv', "semi;colon.csv")),
    st.text(TEXT, max_size=20).map(lambda name: name + ".csv"),
)


@dataclass(frozen=True)
class CsvKind:
    required: list[str]
    optional: list[str]
    cells: dict[str, st.SearchStrategy]  # a plausible value per column
    key: str  # the column a row is known by: unique in a file unless spoiled
    stored: list[dict] = field(default_factory=list)  # rows as they are stored: updates
    ordered: tuple[tuple[str, str], ...] = ()  # (start, end) columns: end on or after start
    hostile: dict[str, st.SearchStrategy] = field(default_factory=dict)  # a spoiled cell, by column


def _in_order(row: dict, pairs) -> dict:
    for start, end in pairs:
        if row.get(start) and row.get(end) and _ISO.match(row[start]) and _ISO.match(row[end]):
            row[start], row[end] = sorted((row[start], row[end]))
    return row


_ISO = re.compile(r"\d{4}-\d{2}-\d{2}$")


@st.composite
def csv_file(draw, kind: CsvKind) -> bytes:
    """A CSV file of the kind: the right columns and rows as stored or new; a clean file (a
    quarter of them: stored rows with at most one cell changed) or one maybe spoiled: a
    header with a column missing, twice or unknown, a row of the wrong length, a hostile
    cell, a key twice, another delimiter or encoding; or no CSV at all (random bytes,
    nothing, a header alone)."""
    clean = draw(st.integers(0, 3)) == 0

    def maybe(spoils: tuple[str, ...], weight: int) -> str:
        return "none" if clean else draw(st.sampled_from(("none",) * weight + spoils))

    shape = maybe(("bytes", "empty", "header only"), 12)
    if shape == "bytes":
        return draw(st.binary(max_size=400))
    if shape == "empty":
        return b""
    columns = [*kind.required, *(c for c in kind.optional if draw(st.booleans()))]
    header = list(draw(st.permutations(columns)))
    spoil = maybe(("drop", "twice", "unknown", "blank", "upper", "padded"), 12)
    if spoil == "drop":
        header.pop(draw(st.integers(0, len(header) - 1)))
    elif spoil == "twice":
        header.append(draw(st.sampled_from(header)))
    elif spoil == "unknown":
        header.append(draw(st.text(TEXT, min_size=1, max_size=10)))
    elif spoil == "blank":
        header.append("")
    elif spoil == "upper":
        header = [name.upper() for name in header]
    elif spoil == "padded":
        header = [f" {name} " for name in header]
    names = [name.strip().lower() for name in header]
    rows: dict[str, list[str]] = {}
    for _ in range(0 if shape == "header only" else draw(st.integers(1, 5))):
        stored = dict(draw(st.sampled_from(kind.stored))) if kind.stored and (clean or draw(st.booleans())) else {}
        changed = draw(st.sampled_from(names)) if clean and draw(st.booleans()) else None
        row = {
            name: stored[name]
            if name in stored and name != changed and (clean or draw(st.integers(0, 5)))
            else draw(kind.cells.get(name, CELL_JUNK))
            for name in names
        }
        row = _in_order(row, kind.ordered)
        rows.setdefault(row.get(kind.key, ""), [row[name] for name in names])  # one row per key
    rows = list(rows.values())
    trouble = maybe(("cell", "cell", "short", "long", "key twice"), 6)
    if rows and trouble == "cell":
        row = draw(st.sampled_from(rows))
        at = draw(st.integers(0, len(row) - 1))
        row[at] = draw(st.one_of(kind.hostile.get(names[at] if at < len(names) else "", CELL_JUNK), CELL_JUNK))
    elif rows and trouble in ("short", "long"):
        row = draw(st.sampled_from(rows))
        if trouble == "long":
            row.append(draw(CELL_JUNK))
        else:
            row.pop()
    elif rows and trouble == "key twice":
        rows.append(list(rows[0]))
    out = io.StringIO()
    delimiter = {"none": ",", "semicolons": ";", "tabs": "\t"}[maybe(("semicolons", "tabs"), 14)]
    writer = csv.writer(out, delimiter=delimiter, lineterminator=draw(st.sampled_from(("\n", "\r\n"))))
    writer.writerow(header)
    writer.writerows(rows)
    encoding = maybe(("utf-8-sig", "latin-1", "utf-16"), 10)
    return out.getvalue().encode("utf-8" if encoding == "none" else encoding, "replace")


def _cell(value) -> str:
    return "" if value is None else value.isoformat() if isinstance(value, dt.date) else str(value)


def _stored(queryset, **columns: str) -> list[dict]:
    """Stored rows as a file would carry them: column → the field (path) it comes from."""
    rows = queryset.values_list(*columns.values())
    return [{column: _cell(value) for column, value in zip(columns, row, strict=True)} for row in rows[:40]]


def _csv_kinds(w: dict) -> dict[str, CsvKind]:
    from accounts import imports as accounts_imports
    from accounts.models import Account, AccountStatus, Contract, OwnerRole, Ownership, PricingModel, Segment
    from revops import people_import
    from revops.models import Team
    from usage.ingestion import csv_import, reference_import
    from usage.models import Meter, MeterTier, ProductRelease

    today = w["today"]
    emails = st.one_of(
        st.sampled_from(w["emails"]),
        st.sampled_from(w["emails"]),
        st.integers(0, 30).map(lambda n: f"fuzz{n}@example.com"),
        st.sampled_from(("FUZZ1@Example.COM", "not-an-email", "a@b", "ae@example.com ")),
    )
    accounts = st.one_of(st.sampled_from(w["accounts"]), st.integers(0, 30).map(lambda n: f"FZ-{n}"))
    contracts = st.one_of(st.sampled_from(w["contracts"]), st.integers(0, 30).map(lambda n: f"FZ-C-{n}"))
    meters = st.one_of(st.sampled_from(w["meters"]), st.sampled_from(w["meters"]), st.just("fz-meter"))
    dates = st.one_of(
        days_from(today, -900, 900), days_from(today, -900, 900), st.sampled_from(("0001-01-01", "9999-12-31"))
    )
    amounts = st.one_of(money(0, 10**13), st.just(""))
    teams = list(Team.objects.values_list("name", flat=True))
    price = st.decimals(min_value=0, max_value=100, places=6).map(str)
    bounds = st.lists(st.integers(1, 10**7), min_size=0, max_size=3, unique=True).map(sorted)
    tiers = st.builds(
        lambda ups, prices: "|".join(
            f"{low}-{high}:{p}" for low, high, p in zip([0, *ups], [*ups, ""], prices, strict=False)
        ),
        bounds,
        st.lists(price, min_size=4, max_size=4),
    )
    times = st.datetimes(dt.datetime(2024, 1, 1), dt.datetime(2027, 12, 31), timezones=st.just(dt.UTC))
    text = st.text(PLAIN, min_size=1, max_size=40)
    stored_tiers: dict[str, list[str]] = {}
    for key, up_to, unit_price in MeterTier.objects.order_by("meter__key", "up_to").values_list(
        "meter__key", "up_to", "unit_price"
    ):
        stored_tiers.setdefault(key, []).append(f"{_cell(up_to)}:{_cell(unit_price)}")
    stored_meters = _stored(
        Meter.objects.order_by("key"),
        key="key",
        name="name",
        unit="unit",
        product_line="product_line",
        feature="feature",
    )
    for row in stored_meters:
        ups = [t.split(":")[0] for t in stored_tiers.get(row["key"], [])]
        prices = [t.split(":")[1] for t in stored_tiers.get(row["key"], [])]
        lows = ["0", *ups[:-1]]
        row["unit_price"] = "|".join(f"{low}-{up}:{pr}" for low, up, pr in zip(lows, ups, prices, strict=True))
    links: dict[str, list[str]] = {}
    for name, key in ProductRelease.meters.through.objects.values_list("productrelease__name", "meter__key"):
        links.setdefault(name, []).append(key)
    stored_releases = _stored(ProductRelease.objects.order_by("name"), date="released_on", name="name", notes="notes")
    for row in stored_releases:
        row["meters"] = "|".join(links.get(row["name"], []))
    return {
        "people": CsvKind(
            people_import.REQUIRED,
            people_import.OPTIONAL,
            {
                "email": emails,
                "name": text,
                "role": st.sampled_from([*Role.values, *Role.values, *Role.labels, "Account executive", "boss"]),
                "team": st.one_of(st.sampled_from(teams or ["Sales"]), st.just("Fuzz Team"), st.just("")),
                "manager_email": st.one_of(st.just(""), st.just(""), emails),
            },
            key="email",
            stored=_stored(User.objects.order_by("email"), email="email", name="name", role="role", team="team__name"),
        ),
        "accounts": CsvKind(
            accounts_imports.ACCOUNT_REQUIRED,
            accounts_imports.ACCOUNT_OPTIONAL,
            {
                "external_id": accounts,
                "name": text,
                "segment": st.sampled_from([*Segment.values, "Mid Market", "mid_market", "SMB"]),
                "parent_external_id": st.one_of(st.just(""), st.just(""), accounts),
                "region": st.text(PLAIN, max_size=70),
                "industry": st.text(PLAIN, max_size=90),
                "status": st.sampled_from([*AccountStatus.values, ""]),
            },
            key="external_id",
            stored=_stored(
                Account.objects.order_by("external_id"),
                external_id="external_id",
                name="name",
                parent_external_id="parent__external_id",
                segment="segment",
                region="region",
                industry="industry",
                status="status",
            ),
        ),
        "contracts": CsvKind(
            accounts_imports.CONTRACT_REQUIRED,
            accounts_imports.CONTRACT_OPTIONAL,
            {
                "external_id": contracts,
                "account": st.sampled_from(w["accounts"]),
                "pricing_model": st.sampled_from(PricingModel.values),
                "signed_on": dates,
                "start_on": dates,
                "end_on": dates,
                "committed_arr": money(0, 10**13),
                "tcv": money(0, 10**13),
                "included_units": st.one_of(st.decimals(min_value=0, max_value=10**9, places=3).map(str), st.just("")),
                "included_meter": st.one_of(meters, st.just("")),
                "base_fee": amounts,
                "credits": amounts,
                "deal_desk_estimate": amounts,
                "ae_estimate": amounts,
                "ramp_days": st.one_of(st.integers(0, 4000).map(str), st.just("")),
                "amends": st.one_of(st.just(""), st.just(""), contracts),
            },
            key="external_id",
            stored=_stored(
                Contract.objects.order_by("external_id"),
                **{name: name for name in accounts_imports.CONTRACT_REQUIRED + accounts_imports.CONTRACT_OPTIONAL}
                | {"account": "account__external_id", "amends": "amends__external_id"},
            ),
            ordered=(("start_on", "end_on"),),
        ),
        "owners": CsvKind(
            accounts_imports.OWNER_REQUIRED,
            accounts_imports.OWNER_OPTIONAL,
            {
                "account": st.sampled_from(w["accounts"]),
                "email": emails,
                "role": st.sampled_from(OwnerRole.values),
                "start_on": dates,
                "end_on": st.one_of(dates, st.just("")),
            },
            key="start_on",
            stored=_stored(
                Ownership.objects.order_by("pk"),
                account="account__external_id",
                email="person__email",
                role="role",
                start_on="start_on",
                end_on="end_on",
            ),
            ordered=(("start_on", "end_on"),),
        ),
        "meters": CsvKind(
            reference_import.METER_REQUIRED,
            reference_import.METER_OPTIONAL,
            {
                "key": st.one_of(meters, st.integers(0, 5).map(lambda n: f"fz-meter-{n}")),
                "name": text,
                "unit": st.text(PLAIN, min_size=1, max_size=20),
                "unit_price": st.one_of(price, tiers),
                "product_line": st.text(PLAIN, max_size=40),
                "feature": st.text(PLAIN, max_size=40),
            },
            key="key",
            stored=stored_meters,
        ),
        "releases": CsvKind(
            reference_import.RELEASE_REQUIRED,
            reference_import.RELEASE_OPTIONAL,
            {
                "date": dates,
                "name": st.one_of(st.sampled_from(w["releases"] or ["r"]), text),
                "meters": st.lists(st.sampled_from(w["meters"]), max_size=3).map("|".join),
                "notes": st.text(PLAIN, max_size=60),
            },
            key="name",
            stored=stored_releases,
        ),
        "usage": CsvKind(
            csv_import.REQUIRED,
            csv_import.OPTIONAL,
            {
                "id": st.integers(0, 10**6).map(lambda n: f"fz-{n}"),
                "account": st.one_of(st.sampled_from(w["accounts"]), st.sampled_from(w["accounts"]), accounts),
                "meter": meters,
                "time": st.one_of(
                    times.map(lambda t: t.isoformat().replace("+00:00", "Z")),
                    times.map(lambda t: t.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()),
                ),
                "quantity": st.one_of(
                    st.decimals(min_value=0, max_value=10**9, places=3).map(str),
                    st.sampled_from(("1e3", ".5", "007", "0", "+1")),
                ),
                "source": st.text(PLAIN, max_size=20),
                "properties": st.one_of(
                    st.dictionaries(st.text(PLAIN, max_size=8), st.text(PLAIN, max_size=8), max_size=3).map(json.dumps),
                    st.just(""),
                ),
            },
            key="id",
            hostile={
                "time": st.sampled_from(
                    ("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2026-02-30T00:00:00Z", "2026-11-02", "today")
                ),
                "quantity": st.sampled_from(("1e400", "NaN", "-1", "1" + "0" * 30, "1.0000001", "1,5", "Infinity")),
                "properties": st.sampled_from(
                    ("[]", "{", "null", '"x"', '{"a": "\\u0000"}', '{"a": "\\ud800"}', '{"\\u0000": 1}')
                ),
            },
        ),
    }


def test_imports_of_every_kind_refuse_bad_files_with_line_column_and_reason_and_import_nothing(world):
    from accounts.models import Account, Contract, Ownership
    from revops.models import Team
    from usage.ingestion.jobs import import_job_run
    from usage.models import (
        DailyRollup,
        ImportedUsageFile,
        ImportJob,
        ImportKind,
        Meter,
        MeterTier,
        ProductRelease,
        QuarantinedEvent,
    )

    w = world
    kinds = _csv_kinds(w)
    assert set(kinds) == set(ImportKind.values), "a kind of import without a fuzzed file"
    imported = tables_of(
        User,
        Team,
        Account,
        Contract,
        Ownership,
        Meter,
        MeterTier,
        DailyRollup,
        ProductRelease,
        ProductRelease.meters.through,
        QuarantinedEvent,
        ImportedUsageFile,
        "usage_event",
        "usage_eventkey",
        "usage_rollupdelta",
    )
    with_jobs = (*imported, ImportJob._meta.db_table)
    kind_junk = st.one_of(st.sampled_from(ImportKind.values), JUNK)

    def upload(client, fields: dict, name: str, *, replay: bool) -> None:
        note(f"imports: {fields!r}"[:4000])
        with rolled_back():
            before = fingerprint(with_jobs)
            response = client.post("/data/imports/", fields)
            no_server_error(name, response)
            answer = judge(response, htmx=False)
            if answer.refused:  # the form itself refused: no job either
                count(name, refused=True)
                refused_with_reason(name, answer)
                assert fingerprint(with_jobs) == before, f"{name}: refused but wrote"
                return
            job_id = int(re.fullmatch(r"/data/imports/(\d+)/", answer.location).group(1))
            before = fingerprint(imported)
            try:
                import_job_run(job_id)
            except Exception:  # noqa: BLE001 - counted as a server error, then the test fails
                count(name, server_error=True)
                pytest.fail(f"{name}: the import job crashed\n{traceback.format_exc()}")
            job = ImportJob.objects.get(pk=job_id)
            page = client.get(f"/data/imports/{job_id}/")
            no_server_error(name, page)
            shown = page.content.decode()
            count(name, refused=job.status == ImportJob.Status.FAILED)
            if job.status == ImportJob.Status.FAILED:
                assert job.errors and job.error_count >= len(job.errors), f"{name}: rejected without problems"
                for problem in job.errors:
                    assert set(problem) == {"line", "column", "reason"} and problem["reason"].strip(), problem
                    assert isinstance(problem["line"], int), problem
                    assert escape(problem["reason"]) in shown, f"{name}: {problem} is not on the job's page"
                assert fingerprint(imported) == before, f"{name}: rejected but imported something"
            else:
                assert job.status == ImportJob.Status.SUCCEEDED, job.status
                if replay:  # what the quarantine holds now is replayed
                    replayed = check_post(
                        "usage:quarantine_replay", client, "/data/quarantine/replay/", {}, tables=imported
                    )
                    assert not replayed.refused

    for kind, spec in kinds.items():

        @fuzzed(28 if kind == "usage" else 20 if kind in ("contracts", "people") else 16)
        @given(
            kind=st.just(kind),
            content=csv_file(spec),
            file_name=FILE_NAMES,
            who=st.sampled_from((Role.FINANCE, Role.ADMIN)),
            spoil=st.sampled_from(("none",) * 8 + ("kind", "no file", "file as text")),
            junk=kind_junk,
            replay=st.integers(0, 4),
        )
        def one_kind(kind, content, file_name, who, spoil, junk, replay):
            fields: dict = {"kind": kind, "file": SimpleUploadedFile(file_name, content)}
            if spoil == "kind":
                fields["kind"] = junk
            elif spoil == "no file":
                del fields["file"]
            elif spoil == "file as text":
                fields["file"] = content.decode("utf-8", "replace")
            upload(w["clients"][who], fields, f"usage:imports ({kind})", replay=replay == 0)

        one_kind()

    @fuzzed(6)
    @given(data=form({"x": JUNK}))
    def replay(data):
        with rolled_back():
            check_post(
                "usage:quarantine_replay", w["clients"][Role.FINANCE], "/data/quarantine/replay/", data, tables=imported
            )

    replay()


# --- Comp: plan documents, statement approval, inquiries ---------------------------------------

EXAMPLE_PLANS = ROOT / "docs" / "examples" / "plans.yaml"
JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(10**20), 10**20),
        st.floats(),
        st.sampled_from(HOSTILE),
        st.text(TEXT, max_size=12),
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(TEXT, max_size=10), children, max_size=4),
    max_leaves=12,
)
HOSTILE_DOCUMENTS = (
    "",
    "---\n",
    "plans:\n",
    "plans: []\nassignments: []\n",
    "plans: [{}]\n",
    "[" * 60 + "]" * 60,
    '{"plans": ' + "[" * 40 + "]" * 40 + "}",
    'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n'
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n",
    "a: &a [*a]\n",
    "plans: !!python/object/apply:os.system ['true']\n",
    "plans: !!binary aGVsbG8=\n",
    "plans:\n\t- name: tab\n",
    'plans: [{name: "\\0", type: land}]\n',
    '{"plans": [{"name": "x", "type": "draw", "effective_from": "2026-01-01", "monthly_amount": 1e400}]}',
    '{"plans": [{"name": "x", "type": "draw", "months": ' + "9" * 5000 + "}]}",
    '{"plans": NaN}',
    "plans: [{name: x, type: [land], effective_from: 2026-02-30}]\n",
    "plans: [{name: x, type: {land: 1}}]\n",
    "assignments: [{email: ae@example.com, plan: Land FY26, start: 0001-01-01, end: 9999-12-31}]\n",
    "\ufeffplans: []\n",
    "? [a, b]\n: c\n",
    # Text PostgreSQL cannot hold (NUL) or UTF-8 cannot encode (a lone surrogate, as JSON allows).
    '{"plans": [{"name": "N\\u0000", "type": "draw", "effective_from": "2026-01-01", "monthly_amount": "10",'
    ' "months": 2, "recoverable": true}]}',
    '{"assignments": [{"email": "a\\u0000b@example.com", "plan": "Land FY26", "start": "2026-01-01"}]}',
    '{"plans": [{"name": "P", "type": "pilot", "effective_from": "2026-01-01", "rate": "0.1", "accounts": ["a\\u0000"],'
    ' "window": {"start": "2026-01-01", "end": "2026-02-01"}}]}',
    '{"plans": [{"name": "\\ud800", "type": "draw", "effective_from": "2026-01-01", "monthly_amount": "10",'
    ' "months": 2, "recoverable": true}]}',
    '{"\\ud800": 1}',
    '{"plans": [{"\\udfff": "x"}]}',
    'plans: [{name: "\\0", type: draw, effective_from: 2026-01-01, monthly_amount: "10", months: 2, recoverable: true}]\n',
)


def _leaf_paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _leaf_paths(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _leaf_paths(child, (*path, i))


def _set(document, path, value):
    if not path:
        return value
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return document


def _delete(document, path):
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return document


@st.composite
def plan_document(draw) -> tuple[str, bytes]:
    """A plan document (file name, bytes): the documented example with plans renamed (so that
    it creates them) and values replaced, deleted or added, as YAML or JSON; or junk."""
    how = draw(st.sampled_from(("renamed",) * 3 + ("example",) * 6 + ("junk", "hostile", "bytes", "huge")))
    fmt = draw(st.sampled_from(("yaml", "json")))
    names = (f"plans.{fmt}",) * 6 + ("plans.yml", "plans.txt", "plans", "PLANS.JSON", "p\x00.yaml")
    name = f"plans.{fmt}" if how == "renamed" else draw(st.sampled_from(names))
    if how == "bytes":
        return name, draw(st.binary(max_size=300))
    if how == "huge":
        return name, b"plans: []\n#" + b"x" * 1_000_001
    if how == "hostile":
        return name, draw(st.sampled_from(HOSTILE_DOCUMENTS)).encode()
    if how == "junk":
        document = draw(JSONISH)
    else:
        document = yaml.safe_load(EXAMPLE_PLANS.read_text())
        if how == "renamed" or draw(st.booleans()):  # new plans, so the document creates them
            suffix = draw(st.sampled_from((" fuzz", " 2", "-β", " " + "n" * 150)))
            for entry in document["plans"] + document["assignments"]:
                key = "name" if "name" in entry else "plan"
                entry[key] = f"{entry[key]}{suffix}"
        for _ in range(0 if how == "renamed" else draw(st.sampled_from((0, 1, 1, 2, 4)))):
            path = draw(st.sampled_from(list(_leaf_paths(document))[1:]))
            action = draw(st.sampled_from(("replace", "replace", "delete", "add")))
            if action == "delete":
                document = _delete(document, path)
            elif action == "add" and isinstance(_get_in(document, path), dict):
                _get_in(document, path)[draw(st.text(TEXT, max_size=10))] = draw(JSONISH)
            else:
                document = _set(document, path, draw(st.one_of(st.sampled_from(HOSTILE), JSONISH)))
    if fmt == "json":
        text = json.dumps(document, default=str, ensure_ascii=draw(st.booleans()))
    else:
        text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    return name, text.encode()


def _get_in(document, path):
    for key in path:
        document = document[key]
    return document


def test_plan_uploads_statement_approval_and_inquiries_refuse_bad_input_with_a_reason_and_write_nothing(world):
    from comp.models import Assignment, Inquiry, InquiryMessage, LedgerLine, Plan, PlanVersion, Statement
    from revops.models import FormSubmission

    w = world
    finance, ae = w["clients"][Role.FINANCE], w["clients"][Role.AE]
    plan_tables = tables_of(Plan, PlanVersion, Assignment)

    @fuzzed(50)
    @given(document=plan_document(), field_name=st.sampled_from(("file",) * 9 + ("document",)))
    # Each was a 500: a type that is a list (unhashable), NUL in a name, a lone surrogate.
    @example(
        document=("plans.yaml", b"plans: [{name: x, type: [land], effective_from: 2026-01-01}]\n"), field_name="file"
    )
    @example(
        document=("plans.json", b'{"assignments": [{"email": "a\\u0000@example.com", "plan": "x"}]}'), field_name="file"
    )
    @example(document=("plans.json", b'{"plans": [{"\\udfff": "x"}]}'), field_name="file")
    def plan_upload(document, field_name):
        file_name, content = document
        with rolled_back():
            check_post(
                "comp:plan_upload",
                finance,
                "/comp/plans/upload/",
                {field_name: SimpleUploadedFile(file_name, content)},
                tables=plan_tables,
            )

    months = st.one_of(
        st.just(w["period"]),
        st.integers(-30, 3).map(lambda n: f"{_add_months(w['today'], n):%Y-%m}"),
        st.sampled_from(("0001-01", "9999-12", "2026-13", "2026-00", "٢٠٢٦-٠١")),
    )

    @fuzzed(25)
    @given(
        person=st.sampled_from((w["ae"], w["ae"], w["other_ae"], 0, 2**63 - 1, w["people"][Role.PRODUCT].pk)),
        period=months,
        data=form(
            {
                "next": optional(st.sampled_from(("/comp/statements/", "//evil.example/", "javascript:alert(1)"))),
                "from": optional(st.just("list")),
            }
        ),
        htmx=st.booleans(),
    )
    def approve(person, period, data, htmx):
        with rolled_back():
            check_post(
                "comp:statement_approve",
                finance,
                f"/comp/statements/{person}/{period}/approve/",
                data,
                tables=tables_of(Statement),
                htmx=htmx,
            )

    @fuzzed(20)
    @given(
        data=form(
            {
                "period": months,
                "team": optional(st.one_of(st.integers(-1, 2**63).map(str), st.sampled_from(("²", "x", "")))),
            },
            {"period": JUNK},
        )
    )
    def approve_month(data):
        with rolled_back():
            check_post(
                "comp:approve_month", finance, "/comp/statements/close/approve/", data, tables=tables_of(Statement)
            )

    @fuzzed(20)
    @given(
        data=form(
            {
                "period": months,
                "paid_on": st.one_of(
                    st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(str),
                    st.sampled_from(("", "soon", "٢٠٢٦-٠١-٠١")),
                ),
            },
            {"period": JUNK, "paid_on": JUNK},
        )
    )
    def mark_paid(data):
        with rolled_back():
            check_post("comp:mark_paid", finance, "/comp/statements/close/paid/", data, tables=tables_of(Statement))

    inquiry_tables = tables_of(Inquiry, InquiryMessage, LedgerLine, FormSubmission)

    @fuzzed(30)
    @given(
        data=form(
            {
                "body": st.text(TEXT, max_size=200),
                "submission": st.one_of(st.uuids(version=4).map(str), st.just(OMIT)),
            },
            {"body": st.one_of(JUNK, st.just("x" * 4001), st.just("   "))},
        ),
        htmx=st.booleans(),
    )
    def inquiry_raise(data, htmx):
        with rolled_back():
            path = f"/comp/statements/lines/{w['ae_line']}/inquiries/"
            check_post("comp:inquiry_raise", ae, path, data, tables=inquiry_tables, htmx=htmx)

    @fuzzed(35)
    @given(
        data=form(
            {
                "body": st.text(TEXT, max_size=200),
                "adjustment": optional(st.decimals(min_value=-(10**8), max_value=10**8, places=2).map(str)),
            },
            {"body": st.one_of(JUNK, st.just("x" * 4001)), "adjustment": NUMBER_JUNK},
        ),
        htmx=st.booleans(),
    )
    def inquiry_answer(data, htmx):
        with rolled_back():
            path = f"/comp/statements/inquiries/{w['inquiry']}/answer/"
            check_post("comp:inquiry_answer", finance, path, data, tables=inquiry_tables, htmx=htmx)

    plan_upload()
    approve()
    approve_month()
    mark_paid()
    inquiry_raise()
    inquiry_answer()


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


# --- Forecasting: storing the deal desk's estimate ------------------------------------------------


def test_the_deal_desk_store_refuses_bad_input_with_a_reason_and_writes_nothing(totals, with_totp):
    """The deal desk estimates from lands with a year of usage: this world has 14 months
    (``_world``'s six have none, so nothing could ever be stored)."""
    from accounts.models import Contract, Segment
    from forecasting.cohorts import land_trajectories
    from forecasting.dealdesk import FIRST_YEAR_MONTHS
    from forecasting.views.planning import _as_of

    call_command("seed_demo", "--accounts", "24", "--months", "14")
    person = User.objects.filter(role=Role.FINANCE).order_by("email").first()
    if not person.authenticator_set.exists():
        with_totp(person)
    finance = Client(raise_request_exception=False)
    finance.force_login(person)
    landed = [t for t in land_trajectories(as_of=_as_of()) if len(t.monthly) >= FIRST_YEAR_MONTHS]
    assert landed, "no land with a year of usage: the store could never succeed"
    contracts = list(Contract.objects.order_by("external_id").values_list("external_id", flat=True))
    similar = st.sampled_from(landed).flatmap(
        lambda t: st.fixed_dictionaries(
            {
                "segment": st.just(t.segment),
                "industry": st.sampled_from((t.industry, "", t.industry.upper())),
                "committed_arr": st.decimals(
                    min_value=max(1000, t.committed_arr / 2), max_value=t.committed_arr * 2, places=2
                ).map(str),
            }
        )
    )
    anything = st.fixed_dictionaries(
        {
            "segment": st.sampled_from(Segment.values),
            "industry": st.text(TEXT, max_size=80),
            "committed_arr": st.one_of(money(1000, 10**6), money(1000, 10**14 - 1)),
        }
    )
    deal = st.tuples(st.one_of(similar, similar, anything), st.sampled_from(contracts)).flatmap(
        lambda pair: form(
            {
                "contract": st.sampled_from((pair[1], pair[1], "", " " + pair[1] + " ")),
                "segment": st.just(pair[0]["segment"]),
                "industry": st.just(pair[0]["industry"]),
                "committed_arr": st.just(pair[0]["committed_arr"]),
                "ae_estimate": optional(money(0, 10**14 - 1)),
            },
            {"committed_arr": NUMBER_JUNK, "ae_estimate": NUMBER_JUNK, "contract": st.one_of(JUNK, st.just("C-none"))},
        )
    )

    @fuzzed(30)
    @given(data=deal, urlencoded=st.booleans())
    def store(data, urlencoded):
        with rolled_back():
            check_post(
                "forecasting:deal_desk_store",
                finance,
                "/planning/deal-desk/store/",
                data,
                tables=tables_of(Contract),
                urlencoded=urlencoded,
            )

    store()


# --- Reviews: opening, patterns, decisions, actions, finalizing -------------------------------------


def test_review_forms_refuse_bad_input_with_a_reason_and_write_nothing(world):
    from accounts.models import Account, Activity
    from reviews import services
    from reviews.models import ActionItem, ActionStatus, ProductDecision, Review, SalesPattern
    from usage.models import Meter, ProductRelease

    w, today = world, world["today"]
    leader, product = w["clients"][Role.LEADER], w["clients"][Role.PRODUCT]
    draft = Review.objects.get(month=dt.date.fromisoformat(w["draft"] + "-01"))
    # Conversations of the month reviewed, for patterns to cite, and a second pattern: with
    # two the review may be finalized (the world's draft has one).
    for i, account in enumerate(Account.objects.order_by("external_id")[:3]):
        Activity.objects.create(
            account=account, person=w["people"][Role.AE], occurred_on=draft.month + dt.timedelta(days=i), kind="call"
        )
    SalesPattern.objects.create(review=draft, title="t2", detail="d2", author=w["people"][Role.LEADER])
    activities = list(services.month_activities(draft).values_list("pk", flat=True)[:20])
    meters = list(Meter.objects.values_list("pk", flat=True))
    features = sorted(set(Meter.objects.exclude(feature="").values_list("feature", flat=True))) or ["x"]
    releases = list(ProductRelease.objects.values_list("pk", flat=True))
    review_tables = tables_of(
        Review,
        SalesPattern,
        SalesPattern.accounts.through,
        SalesPattern.activities.through,
        ProductDecision,
        ProductDecision.meters.through,
        ProductDecision.releases.through,
        ActionItem,
    )
    recent = [f"{_add_months(today, n):%Y-%m}" for n in range(-6, 1)]
    unopened = [m for m in recent if not Review.objects.filter(month=f"{m}-01").exists()] or recent
    months = st.one_of(
        st.sampled_from(unopened),  # with metrics and no review yet: it opens
        st.sampled_from((w["draft"], w["final"])),
        st.integers(-30, 3).map(lambda n: f"{_add_months(today, n):%Y-%m}"),
    )
    some = st.lists
    pattern = form(
        {
            "title": st.text(TEXT, min_size=1, max_size=200),
            "detail": st.text(TEXT, min_size=1, max_size=200),
            "activities": some(ids(activities), min_size=1, max_size=3, unique=True),
            "extra_accounts": some(st.sampled_from(w["accounts"]), max_size=3).map(", ".join),
        },
        {"activities": st.lists(st.one_of(NUMBER_JUNK, JUNK), max_size=3)},
    )
    decision = form(
        {
            "title": st.text(TEXT, min_size=1, max_size=200),
            "rationale": st.text(TEXT, min_size=1, max_size=200),
            "meters": some(ids(meters), max_size=2, unique=True),
            "features": some(st.sampled_from(features), max_size=2, unique=True),
            "releases": some(ids(releases), max_size=2, unique=True),
            "window_days": st.integers(7, 90).map(str),
        },
        {"meters": st.lists(NUMBER_JUNK, max_size=2), "window_days": NUMBER_JUNK},
    )
    action = form(
        {
            "title": st.text(TEXT, min_size=1, max_size=300),
            "owner": ids(w["user_ids"]),
            "due_on": days_from(today, -30, 400),
        },
        {"owner": NUMBER_JUNK, "due_on": DATE_JUNK},
    )
    status = form(
        {"status": st.sampled_from(ActionStatus.values), "note": optional(st.text(TEXT, max_size=300))},
        {"note": st.one_of(JUNK, st.just("n" * 301))},
    )
    targets = {
        "reviews:open": (leader, lambda m: "/reviews/open/", form({"month": months}, {"month": JUNK})),
        "reviews:pattern_new": (leader, lambda m: f"/reviews/{m}/patterns/new/", pattern),
        "reviews:pattern_edit": (leader, lambda m: f"/reviews/{m}/patterns/{w['pattern']}/", pattern),
        "reviews:decision_new": (product, lambda m: f"/reviews/{m}/decisions/new/", decision),
        "reviews:decision_edit": (product, lambda m: f"/reviews/{m}/decisions/{w['decision']}/", decision),
        "reviews:action_add": (leader, lambda m: f"/reviews/{m}/actions/", action),
        "reviews:action_status": (leader, lambda m: f"/reviews/{m}/actions/{w['action']}/status/", status),
        "reviews:finalize": (
            leader,
            lambda m: f"/reviews/{m}/finalize/",
            form({"summary": st.text(TEXT, max_size=200)}),
        ),
    }

    for name, (_, _, fields) in targets.items():

        @fuzzed(15)
        @given(
            name=st.just(name),
            data=fields,
            month=st.sampled_from((w["draft"],) * 10 + (w["final"], "2026-13", "x")),
            htmx=st.booleans(),
        )
        def review_form(name, data, month, htmx):
            client, path, _ = targets[name]
            with rolled_back():
                check_post(name, client, path(month), data, tables=review_tables, htmx=htmx)

        review_form()

    @fuzzed(15)
    @given(
        item=st.sampled_from(
            (
                ("patterns", w["pattern"]),
                ("decisions", w["decision"]),
                ("actions", "new action"),
                ("actions", "new action"),
                ("actions", w["action"]),
                ("patterns", w["decision"]),
                ("reviews", w["pattern"]),
                ("actions", 2**63 - 1),
            )
        ),
        month=st.sampled_from((w["draft"], w["draft"], w["draft"], w["final"])),
        data=form({"x": JUNK}),
    )
    def remove(item, month, data):
        kind, pk = item
        with rolled_back():
            pk = w["new_action"]() if pk == "new action" else pk
            check_post("reviews:remove", leader, f"/reviews/{month}/{kind}/{pk}/remove/", data, tables=review_tables)

    remove()


# --- Integrations: connecting a CRM, its mapping, run now ------------------------------------------


def test_crm_connection_mapping_and_run_forms_refuse_bad_input_with_a_reason_and_write_nothing(world):
    from integrations.models import Connection, RunKind, RunLogEntry, SyncRun
    from integrations.services import default_mapping

    w = world
    admin, finance = w["clients"][Role.ADMIN], w["clients"][Role.FINANCE]
    tables = tables_of(Connection, SyncRun, RunLogEntry)
    field_name = st.one_of(
        st.sampled_from(("Name", "ParentId", "Tier__c", "")),
        st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True),
    )
    connect = form(
        {
            "name": st.text(PLAIN, min_size=1, max_size=40),
            "provider": st.sampled_from(("salesforce", "hubspot")),
            "base_url": st.sampled_from(
                ("https://acme.my.salesforce.com", "https://api.hubapi.com", "http://127.0.0.1:8765")
            ),
            "portal_id": optional(st.integers(0, 10**9).map(str)),
            "access_token": optional(st.text(PLAIN, min_size=1, max_size=60)),
            "refresh_token": optional(st.text(PLAIN, min_size=1, max_size=60)),
        },
        {"base_url": st.one_of(JUNK, st.sampled_from(("javascript:alert(1)", "ftp://x", "//evil.example")))},
    )
    mapping_fields = {
        f"{section}.{key}": field_name
        for section in ("account", "deal", "writeback")
        for key in default_mapping("salesforce")[section]
    }
    pairs = st.lists(
        st.tuples(
            st.text(PLAIN, min_size=1, max_size=20),
            st.sampled_from(("csm", "expand_ae", "land_ae", "boss", "smb", "mid-market")),
        ),
        max_size=3,
    ).map(lambda items: "\n".join(f"{a} = {b}" for a, b in items))
    mapping = form(
        mapping_fields
        | {
            "segment_default": optional(st.sampled_from(("smb", "enterprise", "galactic"))),
            "segment_values": pairs,
            "team_roles": pairs,
        },
        {
            "segment_values": st.one_of(JUNK, st.just("no equals sign")),
            "team_roles": st.one_of(JUNK, st.just(" = csm")),
        },
    )
    run = form(
        {
            "kind": st.sampled_from(RunKind.values),
            "dry_run": optional(st.just("on")),
            "full": optional(st.just("on")),
        },
        {"kind": st.one_of(JUNK, st.just("delete-everything"))},
    )
    connection = w["crm_connection"]

    @fuzzed(30)
    @given(data=connect, who=st.sampled_from(("admin", "finance")))
    def connections(data, who):
        with rolled_back():
            check_post(
                "integrations:connections",
                admin if who == "admin" else finance,
                "/data/connections/",
                data,
                tables=tables,
            )

    @fuzzed(30)
    @given(data=mapping, htmx=st.booleans())
    def mapping_edit(data, htmx):
        with rolled_back():
            check_post(
                "integrations:mapping",
                admin,
                f"/data/connections/{connection}/mapping/",
                data,
                tables=tables,
                htmx=htmx,
            )

    @fuzzed(20)
    @given(data=run)
    def run_now(data):
        with rolled_back():
            check_post("integrations:run", finance, f"/data/connections/{connection}/run/", data, tables=tables)

    connections()
    mapping_edit()
    run_now()


# --- Comp: plan what-if drafts, runs and publishing ------------------------------------------------


def test_whatif_forms_refuse_bad_input_with_a_reason_and_write_nothing(world):
    from comp.models import Plan, PlanDraft, PlanVersion, WhatIfRun
    from comp.whatif import draft_token

    w = world
    finance = w["clients"][Role.FINANCE]
    draft = PlanDraft.objects.get(pk=w["whatif_draft"])
    valid = draft.document
    loaded = yaml.safe_load(valid)
    entry = loaded["plans"][0]
    variants = [valid]
    for key in entry:
        if key in ("name", "type", "effective_from"):
            continue
        for junk in ("0.12", 0.12, "-1", None, [], "x" * 300):
            changed = {**entry, key: junk}
            variants.append(yaml.safe_dump({"plans": [changed]}, allow_unicode=True, sort_keys=False))
    variants.append(yaml.safe_dump({"plans": [{**entry, "name": "No such plan"}]}))
    variants.append(yaml.safe_dump({"plans": [entry, entry]}, default_flow_style=False))
    variants.append(valid + "assignments: []\n")
    documents = st.one_of(
        st.sampled_from(variants),
        st.sampled_from(HOSTILE_DOCUMENTS),
        plan_document().map(lambda named: named[1].decode("utf-8", "replace")),
        JUNK,
    )
    draft_fields = {
        "title": st.text(TEXT, min_size=1, max_size=140),
        "document": documents,
    }
    draft_junk = {"title": st.one_of(JUNK, st.just("   "), st.just("t" * 121))}
    plans = list(Plan.objects.values_list("pk", flat=True))
    tables = tables_of(PlanDraft, WhatIfRun, Plan, PlanVersion)

    @fuzzed(40)
    @given(
        data=form({**draft_fields, "plan": optional(ids(plans))}, {**draft_junk, "plan": NUMBER_JUNK}),
        urlencoded=st.booleans(),
    )
    def whatif_new(data, urlencoded):
        with rolled_back():
            check_post(
                "comp:whatif_new", finance, "/comp/plans/whatif/new/", data, tables=tables, urlencoded=urlencoded
            )

    @fuzzed(40)
    @given(
        data=form(draft_fields, draft_junk),
        target=st.sampled_from((w["whatif_draft"],) * 8 + (0, 2**63 - 1)),
    )
    def whatif_draft(data, target):
        with rolled_back():
            check_post("comp:whatif_draft", finance, f"/comp/plans/whatif/{target}/", data, tables=tables)

    @fuzzed(25)
    @given(
        data=form({"months": st.integers(1, 24).map(str)}, {"months": st.one_of(NUMBER_JUNK, st.just("25"))}),
        target=st.sampled_from((w["whatif_draft"],) * 8 + (0, 2**63 - 1)),
    )
    def whatif_run_new(data, target):
        with rolled_back():
            check_post("comp:whatif_run_new", finance, f"/comp/plans/whatif/{target}/run/", data, tables=tables)

    @fuzzed(20)
    @given(
        data=form({"token": st.just(draft_token(draft))}, {"token": st.one_of(JUNK, st.just("20000101000000000000"))}),
        target=st.sampled_from((w["whatif_draft"],) * 8 + (0, 2**63 - 1)),
    )
    def whatif_publish(data, target):
        with rolled_back():
            check_post("comp:whatif_publish", finance, f"/comp/plans/whatif/{target}/publish/", data, tables=tables)

    whatif_new()
    whatif_draft()
    whatif_run_new()
    whatif_publish()


# --- Data out: webhook endpoints and deliveries, export targets and runs ---------------------------

NOWHERE = "http://127.0.0.1:9"  # a closed port: every request there is refused at once


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def moto_s3():
    """A real S3-compatible server (moto) on a local port, with the bucket ``bi-fuzz``."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="AK", aws_secret_access_key="SK"
    ).create_bucket(Bucket="bi-fuzz")
    yield url
    server.stop()


def _hook_delivery(endpoint, sequence: int, state: str):
    """A delivery of a message to ``endpoint`` in ``state``, numbered ``sequence``."""
    from webhooks.models import Delivery, Endpoint, Message

    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    message = Message.objects.create(
        webhook_id=f"msg_fuzz_{endpoint.pk}_{sequence}",
        type="alert.opened",
        body='{"type":"alert.opened","timestamp":"2026-01-01T00:00:00+00:00","data":{}}',
        occurred_at=at,
        created_at=at,
    )
    delivery = Delivery.objects.create(
        endpoint=endpoint, message=message, sequence=sequence, state=state, next_attempt_at=at, created_at=at
    )
    Endpoint.objects.filter(pk=endpoint.pk).update(next_sequence=sequence + 1)
    return delivery


def test_webhook_and_export_forms_refuse_bad_input_with_a_reason_and_write_nothing(world, settings, tmp_path, moto_s3):
    from exports.models import ExportedPartition, ExportRun, ExportTarget, Format, Schedule
    from exports.selectors import TABLES
    from exports.services import target_create
    from revops.errors import ApplicationError
    from revops.events import EVENT_TYPES
    from revops.models import Team
    from webhooks.models import Attempt, AttemptKind, Delivery, DeliveryState, Endpoint, Message
    from webhooks.services import endpoint_create

    w, today = world, world["today"]
    finance, admin = w["clients"][Role.FINANCE], w["clients"][Role.ADMIN]
    who = st.sampled_from((finance, admin))

    # Webhooks: the world's endpoint (enabled, one delivered delivery), a disabled one, and
    # deliveries in every state a replay can meet (pending, failed, a replay already queued).
    hook_tables = tables_of(Endpoint, Message, Delivery, Attempt)
    hook = Endpoint.objects.get(pk=w["webhook_endpoint"])
    off = endpoint_create(name="Off", url=f"{NOWHERE}/off", event_types=["alert.opened"], enabled=False).endpoint
    deliveries = [
        w["webhook_delivery"],
        _hook_delivery(hook, 2, DeliveryState.PENDING).pk,
        _hook_delivery(hook, 3, DeliveryState.FAILED).pk,
        _hook_delivery(off, 1, DeliveryState.FAILED).pk,
    ]
    queued = _hook_delivery(hook, 4, DeliveryState.DELIVERED)
    Attempt.objects.create(delivery=queued, kind=AttemptKind.REPLAY, requested_at=queued.created_at)
    deliveries.append(queued.pk)
    teams = list(Team.objects.order_by("pk").values_list("pk", flat=True))
    endpoint_form = form(
        {
            "name": st.text(PLAIN, min_size=1, max_size=100),
            "url": st.sampled_from(
                ("https://hooks.example.com/in", f"{NOWHERE}/hooks", "http://localhost:9/h", "https://[::1]:9/x")
            ),
            "scope": st.one_of(st.just("company"), ids(teams)),
            "event_types": st.lists(st.sampled_from(sorted(EVENT_TYPES)), min_size=1, max_size=4, unique=True),
            "enabled": optional(st.just("on")),
        },
        {
            "name": st.one_of(JUNK, st.just("   "), st.just("n" * 101)),
            "url": st.one_of(
                JUNK,
                st.sampled_from(
                    (
                        "ftp://hooks.example.com/x",
                        "https://user:pw@hooks.example.com/x",
                        "javascript:alert(1)",
                        "http://",
                        "https://hooks.example.com:99999/x",
                        "https://" + "a" * 600 + ".com/",
                    )
                ),
            ),
            "scope": st.one_of(JUNK, NUMBER_JUNK),
            "event_types": st.one_of(JUNK, st.just(["alert.opened", "alert.exploded"])),
        },
    )

    @fuzzed(30)
    @given(data=endpoint_form, client=who, private=st.sampled_from((True, True, True, False)))
    def endpoints(data, client, private):
        # Private addresses refused (production) or allowed (the tests' receivers); the closed
        # port, localhost and ::1 resolve without DNS.
        settings.WEBHOOKS_ALLOW_PRIVATE = private
        with rolled_back():
            check_post("webhooks:endpoints", client, "/data/webhooks/", data, tables=hook_tables)

    @fuzzed(25)
    @given(data=endpoint_form, target=st.sampled_from((hook.pk,) * 4 + (off.pk,) * 3 + (0, 2**63 - 1)))
    def edit(data, target):
        settings.WEBHOOKS_ALLOW_PRIVATE = True
        with rolled_back():
            check_post("webhooks:edit", finance, f"/data/webhooks/{target}/edit/", data, tables=hook_tables)

    @fuzzed(20)
    @given(
        data=form(
            {"grace_hours": st.integers(0, 168).map(str)},
            {"grace_hours": st.one_of(NUMBER_JUNK, st.sampled_from(("169", "-1", "1.5", "24h")))},
        ),
        target=st.sampled_from((hook.pk,) * 6 + (0, 2**63 - 1)),
    )
    def rotate(data, target):
        with rolled_back():
            check_post("webhooks:rotate", admin, f"/data/webhooks/{target}/rotate/", data, tables=hook_tables)

    @fuzzed(12)
    @given(data=form({"x": JUNK}), target=st.sampled_from((hook.pk, hook.pk, off.pk, off.pk, 0)), client=who)
    def send_test(data, target, client):
        with rolled_back():
            check_post("webhooks:test", client, f"/data/webhooks/{target}/test/", data, tables=hook_tables)

    @fuzzed(15)
    @given(data=form({"x": JUNK}), target=st.sampled_from((*deliveries, 0, 2**63 - 1)), client=who)
    def replay(data, target, client):
        with rolled_back():
            path = f"/data/webhooks/deliveries/{target}/replay/"
            check_post("webhooks:replay", client, path, data, tables=hook_tables)

    endpoints()
    edit()
    rotate()
    send_test()
    replay()

    # Exports: folders under tmp_path, a bucket on the local S3 server, and places that fail.
    export_tables = tables_of(ExportTarget, ExportRun, ExportedPartition)
    lake = tmp_path / "lake"
    (tmp_path / "a-file").write_text("not a folder")
    table_names = list(TABLES)
    lake_target = w["export_target"]  # csv of rollups, in a folder
    everything = target_create(
        name="Everything", url=f"file://{lake}/all", formats=["csv", "parquet"], tables=table_names
    ).pk
    target_form = form(
        {
            "name": st.one_of(st.text(PLAIN, min_size=1, max_size=100), st.sampled_from(("Lake", " lake ", "LAKE"))),
            "url": st.sampled_from(
                (
                    f"file://{lake}",
                    f"file://localhost{lake}/x",
                    f"s3://bi-fuzz/exports?endpoint={moto_s3}&region=us-east-1",
                    f"s3://no-such-bucket?endpoint={moto_s3}",
                    f"s3://bi-fuzz/p?endpoint={NOWHERE}",
                )
            ),
            "formats": st.lists(st.sampled_from(Format.values), min_size=1, unique=True),
            "tables": st.lists(st.sampled_from(table_names), min_size=1, unique=True),
            "schedule": st.sampled_from(Schedule.values),
            "access_key_id": optional(st.just("AK")),
            "secret_access_key": optional(st.just("SK")),
        },
        {
            "url": st.one_of(
                JUNK,
                st.sampled_from(
                    (
                        "file://host/x",
                        "file:///",
                        "file:relative/x",
                        f"file://{lake}?x=1",
                        "s3://",
                        "s3://b?foo=1",
                        "s3://b?endpoint=ftp://x",
                        "s3://b?endpoint=http://",
                        "s3://b?endpoint=http://[::1",
                        "s3://[b/x",
                        "s3://b?region=not a region",
                        "https://example.com/x",
                    )
                ),
            ),
            "formats": st.one_of(JUNK, st.just(["csv", "xlsx"])),
            "tables": st.one_of(JUNK, st.just(["rollups", "passwords"])),
            "schedule": st.one_of(JUNK, st.just("hourly")),
        },
    )

    def target(url: str) -> dict:
        return {"name": "Bucket", "url": url, "formats": ["csv"], "tables": ["rollups"], "schedule": "daily"}

    @fuzzed(30)
    @given(data=target_form, client=who)
    @example(data=target("s3://b?endpoint=http://[::1"), client=finance)
    @example(data=target("s3://b/p?endpoint=http://&region=us-east-1"), client=finance)
    @example(data=target("s3://b/p?region=not a region"), client=finance)
    @example(data=target("s3://[b/x"), client=finance)
    def targets(data, client):
        with rolled_back():
            check_post("exports:targets", client, "/data/exports/", data, tables=export_tables)

    @fuzzed(20)
    @given(data=target_form, target=st.sampled_from((lake_target, lake_target, everything, 0, 2**63 - 1)))
    def target_edit(data, target):
        with rolled_back():
            check_post("exports:target", finance, f"/data/exports/{target}/", data, tables=export_tables)

    # Test connection writes a probe where the target points: targets made from URL parts as
    # the target form takes them (one it refuses cannot be tested, so it is not made).
    bucket_url = st.builds(
        "s3://{}/{}?endpoint={}&region={}".format,
        st.sampled_from(("bi-fuzz", "no-such-bucket", "UPPER", "a")),
        st.sampled_from(("", "exports", "a/b/c")),
        st.sampled_from((moto_s3, moto_s3, NOWHERE, "http://", "https://[::1]:9", "http://a b")),
        st.one_of(st.sampled_from(("", "us-east-1", "not a region", "ü")), st.text(PLAIN, max_size=8)),
    )
    folder_url = st.sampled_from(
        (f"file://{lake}/t", f"file://{tmp_path}/a-file", f"file://{tmp_path}/a-file/below", "file:///proc/fuzz")
    )

    @fuzzed(20)
    @given(url=st.one_of(folder_url, bucket_url, bucket_url), data=form({"x": JUNK}), client=who)
    def test_connection(url, data, client):
        with rolled_back():
            try:
                target = target_create(
                    name="Probe",
                    url=url,
                    formats=["csv"],
                    tables=["rollups"],
                    credentials={"access_key_id": "AK", "secret_access_key": "SK"},
                )
            except ApplicationError as exc:
                note(f"not a target: {url} ({exc.message})")
                return
            check_post("exports:test", client, f"/data/exports/{target.pk}/test/", data, tables=export_tables)

    @fuzzed(25)
    @given(
        data=form(
            {
                "first_day": days_from(today, -400, 0),
                "last_day": days_from(today, -30, 0),
                "tables": st.lists(st.sampled_from(table_names), min_size=1, unique=True),
            },
            {"first_day": DATE_JUNK, "last_day": st.one_of(DATE_JUNK, days_from(today, 1, 30))},
        ),
        target=st.sampled_from((lake_target, everything, everything, 0)),
        client=who,
    )
    def run_now(data, target, client):
        with rolled_back():
            check_post("exports:run", client, f"/data/exports/{target}/run/", data, tables=export_tables)

    targets()
    target_edit()
    test_connection()
    run_now()


# --- Data in: Stripe connections and their domain table, warehouse sources -------------------------


def test_stripe_and_warehouse_forms_refuse_bad_input_with_a_reason_and_write_nothing(world, warehouse):  # noqa: F811
    from accounts.models import Account
    from integrations.billing.services import connection_create
    from integrations.fakes.stripe import FakeStripe, running_stripe
    from integrations.models import (
        BillingDomain,
        CursorKind,
        StripeConnection,
        StripeRun,
        UsageMode,
        WarehouseMode,
        WarehousePull,
        WarehouseSource,
    )
    from integrations.warehouse.forms import MAP_FIELDS
    from integrations.warehouse.services import warehouse_source_save
    from revops.errors import ApplicationError

    w, today = world, world["today"]
    finance, admin = w["clients"][Role.FINANCE], w["clients"][Role.ADMIN]
    who = st.sampled_from((finance, admin))
    stripe_tables = tables_of(StripeConnection, BillingDomain, StripeRun)
    key = "sk_test_fake"
    with running_stripe(FakeStripe(secret_key=key)) as fake:
        other = connection_create(name="Other Stripe", secret_key=key, api_base=fake.url)
        other_domain = BillingDomain.objects.create(
            connection=other, domain="other.example", account=Account.objects.get(external_id=w["accounts"][0])
        )
        stripe_id = w["stripe"]
        meter_lines = st.lists(
            st.tuples(st.from_regex(r"(mtr|price)_[A-Za-z0-9]{1,12}", fullmatch=True), st.sampled_from(w["meters"])),
            max_size=3,
        ).map(lambda pairs: "\n".join(f"{a} = {b}" for a, b in pairs))

        def never_stripe_itself(data: dict) -> dict:
            """A blank API base means api.stripe.com: the fake answers instead (no network here)."""
            base = data.get("api_base")
            last = base[-1] if isinstance(base, list) and base else base
            return data if last and str(last).strip() else {**data, "api_base": fake.url}

        connect = form(
            {
                "name": st.text(PLAIN, min_size=1, max_size=100),
                "secret_key": st.sampled_from((key, key, key, "sk_test_wrongkey1", "rk_live_abcd1234")),
                "webhook_secret": optional(st.sampled_from(("whsec_test_secret", "whsec_abc+/="))),
                "api_base": st.sampled_from((fake.url,) * 6 + (NOWHERE,)),
                "metadata_key": st.one_of(
                    st.just("revops_account"), st.from_regex(r"[A-Za-z0-9_\-]{1,40}", fullmatch=True)
                ),
                "match_email_domain": optional(st.just("on")),
                "usage_mode": st.sampled_from(UsageMode.values),
                "meter_map": meter_lines,
                "usage_start": optional(days_from(today, -400, 0)),
            },
            {
                "secret_key": st.one_of(JUNK, st.sampled_from(("sk_live_", "pk_test_abcd1234", " sk_test_fake "))),
                "webhook_secret": st.one_of(JUNK, st.just("whsec_"), st.just("whsec_a b")),
                "api_base": st.one_of(JUNK, st.sampled_from(("ftp://x", "javascript:alert(1)", f"{NOWHERE}/v1"))),
                "metadata_key": st.one_of(JUNK, st.just("a" * 41), st.just("revops account")),
                "usage_mode": st.one_of(JUNK, st.just("everything")),
                "meter_map": st.one_of(
                    JUNK,
                    st.sampled_from(
                        ("mtr_1 = no_such_meter", "mtr_1 = a\nmtr_1 = b", "= x", "mtr 1 = x", "no equals sign")
                    ),
                ),
                "usage_start": DATE_JUNK,
            },
        ).map(never_stripe_itself)

        @fuzzed(25)
        @given(data=connect, client=who)
        def connections(data, client):
            with rolled_back():
                check_post(
                    "integrations:stripe_connections", client, "/data/connections/stripe/", data, tables=stripe_tables
                )

        connections()

    @fuzzed(25)
    @given(
        data=form(
            {
                "domain": st.one_of(
                    st.sampled_from(("acme.com", "Globex.COM", "@initech.io", "example.com", "other.example")),
                    st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9-]{1,10})?\.[a-z]{2,6}", fullmatch=True),
                ),
                "account": ids(w["accounts"]),
            },
            {
                "domain": st.one_of(JUNK, st.sampled_from(("acme", "-x.com", "a..b.com", "x@y@z.com", "é.com"))),
                "account": st.one_of(JUNK, st.just("no-such-account")),
            },
        ),
        target=st.sampled_from((stripe_id,) * 6 + (0,)),
        client=who,
    )
    def domain_add(data, target, client):
        with rolled_back():
            path = f"/data/connections/stripe/{target}/domains/"
            check_post("integrations:stripe_domain_add", client, path, data, tables=stripe_tables)

    @fuzzed(12)
    @given(
        data=form({"x": JUNK}),
        target=st.sampled_from(
            ((stripe_id, w["stripe_domain"]),) * 3
            + ((stripe_id, other_domain.pk), (other.pk, w["stripe_domain"]), (stripe_id, 2**63 - 1), (0, 1))
        ),
        client=who,
    )
    def domain_remove(data, target, client):
        connection, domain = target
        with rolled_back():
            path = f"/data/connections/stripe/{connection}/domains/{domain}/remove/"
            check_post("integrations:stripe_domain_remove", client, path, data, tables=stripe_tables)

    @fuzzed(12)
    @given(
        data=form({"full": optional(st.just("on"))}, {"full": JUNK}),
        target=st.sampled_from((stripe_id, stripe_id, other.pk, 0)),
        client=who,
    )
    def sync(data, target, client):
        with rolled_back():
            path = f"/data/connections/stripe/{target}/sync/"
            check_post("integrations:stripe_sync", client, path, data, tables=stripe_tables)

    domain_add()
    domain_remove()
    sync()

    # Warehouse: a real second PostgreSQL database as the warehouse, with rows good and bad.
    wh_tables = tables_of(WarehouseSource, WarehousePull)
    meter, account = w["meters"][0], w["accounts"][0]
    warehouse.rows(
        "daily_usage",
        [
            (account, meter, dt.date(2026, 11, 1), Decimal("12.5"), 3, dt.datetime(2026, 11, 2, tzinfo=dt.UTC)),
            (account, meter, dt.date(2026, 11, 2), Decimal("0"), 0, dt.datetime(2026, 11, 3, tzinfo=dt.UTC)),
            ("nobody", "no-meter", dt.date(2026, 11, 2), Decimal("-1"), -1, None),
        ],
    )
    warehouse.rows(
        "usage_events",
        [
            ("e1", account, meter, dt.datetime(2026, 11, 1, 5, tzinfo=dt.UTC), Decimal("2"), 1),
            ("e2", "nobody", meter, dt.datetime(2026, 11, 1, 6, tzinfo=dt.UTC), Decimal("1e20"), 2),
        ],
    )
    dsn = warehouse.dsn
    aggregates = {"account": "customer", "meter": "metric", "day": "usage_day", "quantity": "total"}
    events = {"id": "event_id", "account": "customer", "meter": "metric", "time": "happened_at", "quantity": "amount"}
    pulled = WarehouseSource.objects.get(pk=w["wh_source"])  # has a pull: its name and mode are fixed
    fresh = warehouse_source_save(
        name="Fresh",
        url=dsn,
        mode=WarehouseMode.AGGREGATES,
        query="",
        table="daily_usage",
        mapping=aggregates | {"event_count": "events"},
        cursor_column="updated_at",
        cursor_kind=CursorKind.TIMESTAMP,
        lookback=3600,
        schedule_minutes=60,
    )
    column = st.sampled_from(
        (
            "customer",
            "metric",
            "usage_day",
            "total",
            "events",
            "updated_at",
            "event_id",
            "happened_at",
            "amount",
            "seq",
            "nope",
        )
    )
    queries = st.sampled_from(
        (
            "",
            "SELECT * FROM daily_usage",
            "select * from daily_usage order by usage_day;",
            "WITH t AS (SELECT * FROM usage_events) SELECT * FROM t",
            "SELECT *, 1 / (total - total) AS boom FROM daily_usage",  # fails only when rows are read
            "SELECT customer::int AS customer, metric, usage_day, total, updated_at FROM daily_usage",
            "SELECT * FROM no_such_table",
            "SELECT '%s' AS customer, '%%' AS metric, * FROM daily_usage",
            "SELECT 1; DROP TABLE daily_usage",
            "DELETE FROM daily_usage",
            "SELECT * FROM daily_usage -- ; comment",
        )
    )
    tables_ = st.sampled_from(("", "daily_usage", "public.daily_usage", "usage_events", 'no"such', "a.b.c.d"))
    urls = st.sampled_from(
        (dsn, dsn, dsn, "postgresql://r@127.0.0.1:9/w", "snowflake://r:s@acct/DB/SCHEMA", "bigquery://p/d")
    )
    shapes = st.sampled_from(
        (
            (WarehouseMode.AGGREGATES, aggregates),
            (WarehouseMode.AGGREGATES, aggregates | {"event_count": "events"}),
            (WarehouseMode.EVENTS, events),
            (WarehouseMode.EVENTS, events | {"properties": "metric"}),
        )
    )
    source_junk = {
        "url": st.one_of(JUNK, st.sampled_from(("mysql://r@h/d", "postgresql://r@[::1/w", "://", "sqlite:///x.db"))),
        "mode": st.one_of(JUNK, st.just("both")),
        "query": st.one_of(JUNK, queries),
        "cursor_kind": st.one_of(JUNK, st.just("uuid")),
        "lookback": st.one_of(NUMBER_JUNK, st.just(str(10**12 + 1))),
        "schedule_minutes": st.one_of(NUMBER_JUNK, st.just(str(7 * 24 * 60 + 1))),
    }

    def source_form_of(shape) -> st.SearchStrategy[dict]:
        """The form of a source in ``mode`` whose columns are mapped as ``mapping`` (then spoiled)."""
        mode, mapping = shape
        fields = {
            "name": st.text(PLAIN, min_size=1, max_size=100),
            "url": urls,
            "mode": st.just(mode),
            "query": st.sampled_from(("", "SELECT * FROM daily_usage", "SELECT * FROM usage_events")),
            "table": st.sampled_from(("daily_usage", "public.usage_events")),
            "cursor_column": st.one_of(st.just(""), column),
            "cursor_kind": st.sampled_from(CursorKind.values),
            "lookback": st.one_of(st.integers(0, 96), st.just(10**12)).map(str),
            "schedule_minutes": st.integers(0, 7 * 24 * 60).map(str),
        }
        fields |= {
            f"map_{name}": st.just(mapping[name]) if name in mapping else optional(column) for name in MAP_FIELDS
        }
        return form(fields, source_junk)

    source_form = shapes.flatmap(source_form_of)

    @fuzzed(25)
    @given(data=source_form, client=who)
    def sources(data, client):
        with rolled_back():
            check_post("integrations:warehouse_sources", client, "/data/connections/warehouse/", data, tables=wh_tables)

    @fuzzed(25)
    @given(
        data=source_form,
        target=st.sampled_from((pulled.pk, pulled.pk, fresh.pk, fresh.pk, 0)),
        keep_url=st.booleans(),
        same_name=st.booleans(),
    )
    def source_edit(data, target, keep_url, same_name):
        if keep_url:
            data = {**data, "url": ""}  # blank: keep the stored URL
        if same_name and target:
            data = {**data, "name": WarehouseSource.objects.get(pk=target).name}
        with rolled_back():
            path = f"/data/connections/warehouse/{target}/"
            check_post("integrations:warehouse_source", finance, path, data, tables=wh_tables)

    # Test & preview reads the source as saved: sources made from generated settings (the ones
    # the service refuses cannot exist, so they are not made), some with a cursor from a pull.
    @fuzzed(30)
    @given(
        url=st.sampled_from((dsn, dsn, dsn, "postgresql://r@127.0.0.1:9/w")),
        shape=st.one_of(
            shapes,
            shapes,
            st.tuples(
                st.sampled_from(WarehouseMode.values), st.dictionaries(st.sampled_from(list(MAP_FIELDS)), column)
            ),
        ),
        query=queries,
        table=tables_,
        cursor=st.sampled_from(
            (("", CursorKind.TIMESTAMP, ""), ("updated_at", CursorKind.TIMESTAMP, "")) * 2
            + (
                ("updated_at", CursorKind.TIMESTAMP, "2026-11-02T00:00:00+00:00"),
                ("seq", CursorKind.ID, ""),
                ("seq", CursorKind.ID, "1"),
                ("happened_at", CursorKind.TIMESTAMP, "2026-11-01T00:00:00+00:00"),
                ("nope", CursorKind.ID, ""),
            )
        ),
        lookback=st.one_of(st.integers(0, 96 * 3600), st.just(10**12 * 3600), st.just(10**12)),
        data=form({"x": JUNK}),
        client=who,
    )
    @example(  # the form takes up to 10**12 hours of lookback, behind a cursor of a pull
        url=dsn,
        shape=(WarehouseMode.AGGREGATES, aggregates),
        query="",
        table="daily_usage",
        cursor=("updated_at", CursorKind.TIMESTAMP, "2026-11-02T00:00:00+00:00"),
        lookback=10**12 * 3600,
        data={},
        client=finance,
    )
    @example(  # a query that fails only when its rows are read
        url=dsn,
        shape=(WarehouseMode.AGGREGATES, aggregates),
        query="SELECT *, 1 / (total - total) AS boom FROM daily_usage",
        table="",
        cursor=("", CursorKind.TIMESTAMP, ""),
        lookback=0,
        data={},
        client=finance,
    )
    @example(  # a query ending in a comment
        url=dsn,
        shape=(WarehouseMode.EVENTS, events),
        query="SELECT * FROM usage_events -- ; the events",
        table="",
        cursor=("seq", CursorKind.ID, "1"),
        lookback=10**12,
        data={},
        client=finance,
    )
    def preview(url, shape, query, table, cursor, lookback, data, client):
        (mode, mapping), (column_, kind, last) = shape, cursor
        with rolled_back():
            try:
                source = warehouse_source_save(
                    name="Preview",
                    url=url,
                    mode=mode,
                    query=query,
                    table=table,
                    mapping=mapping,
                    cursor_column=column_,
                    cursor_kind=kind,
                    lookback=lookback,
                    schedule_minutes=60,
                )
            except ApplicationError as exc:
                note(f"not a source: {exc.message}")
                return
            WarehouseSource.objects.filter(pk=source.pk).update(last_cursor=last)
            before = fingerprint(wh_tables)
            # A 200 answer is the preview itself (its rows and their problems), not the form again.
            answer = check_post(
                "integrations:warehouse_preview",
                client,
                f"/data/connections/warehouse/{source.pk}/preview/",
                data,
                tables=wh_tables,
                answers_with_a_page=True,
            )
            assert fingerprint(wh_tables) == before, f"test & preview wrote ({answer.status})"

    @fuzzed(10)
    @given(
        data=form({"full": optional(st.just("on"))}, {"full": JUNK}),
        target=st.sampled_from((pulled.pk, fresh.pk, 0)),
        client=who,
    )
    def pull_now(data, target, client):
        with rolled_back():
            path = f"/data/connections/warehouse/{target}/pull/"
            check_post("integrations:warehouse_pull_now", client, path, data, tables=wh_tables)

    sources()
    source_edit()
    preview()
    pull_now()


# --- Sign-in: "continue with single sign-on" ---------------------------------------------------------


def test_the_sso_start_form_refuses_bad_input_with_a_reason_and_writes_nothing(totals):
    """Posted by someone not signed in (the login page's form): an email that no provider
    signs in for is answered with why, one that a provider does leads to it."""
    from revops.sso.models import IdentityProvider

    domain = "sso.example.test"
    IdentityProvider.objects.create(
        name="Fuzz OIDC",
        slug="fuzz-oidc",
        kind=IdentityProvider.Kind.OIDC,
        domains=[domain],
        issuer_url=NOWHERE,
        client_id="revops",
    )
    IdentityProvider.objects.create(
        name="Retired",
        slug="retired",
        kind=IdentityProvider.Kind.OIDC,
        domains=["retired.example.test"],
        is_active=False,
    )
    anonymous = Client(raise_request_exception=False)
    tables = tables_of(IdentityProvider, User, "django_session")
    emails = st.one_of(
        st.sampled_from(
            (
                f"ana@{domain}",
                f"ANA@{domain.upper()}",
                f"  ana@{domain}  ",
                f"@{domain}",
                f"a@b@{domain}",
                "ana@retired.example.test",
                "ana@example.com",
                "no at sign",
            )
        ),
        st.emails(),
    )

    @fuzzed(25)
    @given(data=form({"email": emails}, {"email": st.one_of(JUNK, st.just(f"ana\x00@{domain}"))}))
    @example(data={"email": f"ana@{domain}\x00"})
    @example(data={"email": ["ana@example.com", f"ana@{domain}"]})
    def start(data):
        with rolled_back():
            check_post("sso:start", anonymous, "/sso/start/", data, tables=tables)

    start()


# --- The totals -------------------------------------------------------------------------------------


def test_the_fuzz_totals_are_written_and_count_no_server_error():
    """Runs last in this module: the totals of the properties above, kept for quoting."""
    data = summary_written()
    print(f"fuzz: {data['cases']} cases ({data['refused']} refused), {data['server_errors']} server errors")
    assert data["cases"], "no fuzz property ran before this test: run the whole module (it checks their totals)"
    assert data["server_errors"] == 0
    assert {name.split(" ")[0] for name in data["forms"]} >= FUZZED, "a form that was never fuzzed"
