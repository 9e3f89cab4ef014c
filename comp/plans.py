"""Plan documents (YAML or JSON): parse, validate, apply all-or-nothing, export.

A document lists plan versions and assignments (schema in docs/plans.md). Everything is
checked before anything is written, and every problem is reported with its path in the
document (``plans[0].schedule[1].share``), its line when known, and the reason. Then, in
one transaction: a new plan name makes the plan and its version 1; a known plan with a
new, later ``effective_from`` makes its next version; a version or assignment already
stored with the same values is skipped, so re-importing a document changes nothing.

Versions are immutable (a database trigger), so an import never changes what was
computed under an old version: a version that would start before the plan's latest one,
or in a month that already has ledger lines under the plan, is refused.

Every amount, rate and ratio is written as a string ("0.10"), never a number, so no
float ever reaches money; parameters are stored with decimals as canonical strings
(``"0.10"`` is stored as ``"0.1"``) and days and months as integers.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml
from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Prefetch, QuerySet
from django.db.models.functions import Lower

from accounts.models import Account
from comp.models import Assignment, LedgerLine, Plan, PlanType, PlanVersion, QuotaPeriod
from comp.periods import add_months, month_start
from revops.errors import ApplicationError
from revops.models import User
from revops.tabular import MONEY_DIGITS, MONEY_PLACES, CellError, parse_date, parse_decimal

MAX_BYTES = 1_000_000
# A plan document is a few hundred values; these bound the work before any checking, so a
# huge list or a YAML alias bomb (each alias re-using an anchor many times over) is refused
# in milliseconds instead of being walked for ever.
MAX_VALUES = 20_000
MAX_DEPTH = 32
MAX_LISTED = 1000
RATIO_PLACES = 6
RATIO_DIGITS = 12
MAX_DAY = 3650
NAME_MAX = Plan._meta.get_field("name").max_length
DEFAULT_RAMP = ["0.25", "0.5", "0.75", "1"]
DEFAULT_RECHECK = "monthly"
# Held amounts are re-checked until the clawback day, or this day without a clawback.
RECHECK_UNTIL_DAY = 365

# The fields of each plan type, in the order a document (and an export) lists them.
PLAN_FIELDS = ["name", "type", "effective_from"]
TYPE_FIELDS: dict[str, list[str]] = {
    PlanType.LAND: [
        "base_rate",
        "accelerators",
        "schedule",
        "recheck",
        "clawback",
        "quota_credit",
        "payment_basis",
        "refund_clawback",
    ],
    PlanType.EXPAND: ["rate", "tiers", "credit_split_months"],
    PlanType.SPIFF: ["new_workload", "new_region", "new_sku_rate", "recommit_rate"],
    PlanType.CS: ["target_bonus", "curve"],
    PlanType.PILOT: ["rate", "accounts", "window", "comparison"],
    PlanType.DRAW: ["monthly_amount", "months", "recoverable"],
}
# Paying on payment and clawing back on refunds (docs/plans.md "Paid on payment"): land
# plans only. Stored only when they differ from the default, so a version imported before
# the options existed, and a document that leaves them out, are the same version.
PAYMENT_BASES = ["booked", "paid"]
PAYMENT_FIELDS = ["payment_basis", "refund_clawback"]
WHY_NOT_ON_PAYMENT = {
    PlanType.EXPAND: "expansion commission is earned on metered consumption over a quarter to date, pooled over "
    "the whole book and settled 92 days after the quarter, so no one invoice stands behind it",
    PlanType.SPIFF: "a SPIFF pays a flat amount or a share of usage for an event (a workload, a region, a SKU, "
    "a recommit), not an invoice",
    PlanType.CS: "the CS bonus is paid on the book's NRR at the quarter end, not on any invoice",
    PlanType.PILOT: "the pilot bonus is paid on consumption growth over its window, not on any invoice",
    PlanType.DRAW: "a draw is a flat advance, paid whatever is invoiced",
}
ASSIGNMENT_FIELDS = ["email", "plan", "start", "end", "quota", "quota_period", "ramp_relief"]
ZERO, ONE = Decimal(0), Decimal(1)


# --- The report ------------------------------------------------------------------------


@dataclass
class PlanReport:
    """Problems (path, line, reason) or, after a successful import, the counts."""

    errors: list[dict] = field(default_factory=list)
    error_count: int = 0
    summary: dict[str, int] = field(default_factory=dict)

    def add(self, path: str, reason: str, line: int | None = None) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_LISTED:
            self.errors.append({"path": path, "line": line, "reason": reason})

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def messages(self) -> list[str]:
        """``path: reason``, one per problem, in document order."""
        return [f"{e['path']}: {e['reason']}" if e["path"] else e["reason"] for e in self.errors]

    def lines(self) -> list[str]:
        """As the command prints them: the message, then the line when known."""
        out = [
            f"{message} (line {e['line']})" if e["line"] else message
            for message, e in zip(self.messages(), self.errors, strict=True)
        ]
        if self.error_count > len(self.errors):
            out.append(f"… and {self.error_count - len(self.errors)} more problems")
        return out


class PlansRejected(ApplicationError):
    """The document was refused as a whole; ``report`` lists every problem."""

    def __init__(self, report: PlanReport) -> None:
        first = report.messages()[0] if report.errors else "invalid document"
        super().__init__(f"Nothing was imported: {report.error_count} problem(s), the first: {first}")
        self.report = report


# --- Reading the document --------------------------------------------------------------


class _Number(str):
    """A JSON number with a fraction, kept as written so the error can quote it."""


_MISSING = object()


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, but dates stay text: ``parse_date`` checks them and says why
    (PyYAML itself crashes on ``2026-02-30``)."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)
# libyaml's parser when PyYAML has it, for sizing a document before loading it.
_FastLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load(data: bytes, filename: str, report: PlanReport) -> Any:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        report.add("", "the file is not UTF-8 text")
        return None
    as_json = filename.lower().endswith(".json") or (
        not filename.lower().endswith((".yaml", ".yml")) and text.lstrip().startswith(("{", "["))
    )
    try:
        if as_json:
            document = json.loads(text, parse_float=_Number)
            values, depth = _json_shape(document)
        else:
            values, depth = _yaml_events(text)
            if values <= MAX_VALUES:
                root = yaml.compose(text, Loader=_Loader)  # nodes only: aliases are shared
                values, depth = _yaml_shape(root)
        if values > MAX_VALUES or depth > MAX_DEPTH:
            many = f"{values:,}" if values <= 10 * MAX_VALUES else f"more than {10 * MAX_VALUES:,}"
            report.add(
                "",
                f"is too large for a plan document: {many} values nested {depth} deep once aliases are expanded "
                f"(at most {MAX_VALUES:,} values, {MAX_DEPTH} levels)",
            )
            return None
        if not as_json:
            document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
        if (half := _lone_surrogate(document)) is not None:
            shown = half[:60].encode("utf-8", "backslashreplace").decode()
            report.add("", f"is not UTF-8 text: '{shown}' has half of a surrogate pair (a lone \\u escape)")
            return None
        return document
    except json.JSONDecodeError as exc:
        report.add("", f"is not valid JSON: {exc.msg}", exc.lineno)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        report.add("", f"is not valid YAML: {problem}", mark.line + 1 if mark else None)
    except (ValueError, RecursionError) as exc:
        report.add("", f"is not readable: {exc}")
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _lone_surrogate(document: Any) -> str | None:
    """The first text (a key or a value) with half of a surrogate pair: JSON and YAML read
    ``"\\ud800"`` as one, but it is no character, so neither the page (UTF-8) nor
    PostgreSQL can hold it (a plan or a report quoting it was a 500)."""
    stack = [document]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and _SURROGATE.search(value):
            return value
    return None


def _yaml_events(text: str) -> tuple[int, int]:
    """Values and depth as written (aliases unexpanded), stopping as soon as there are too
    many: a long list is refused without building its nodes."""
    values = depth = level = 0
    try:
        events = list(_bounded(yaml.parse(text, Loader=_FastLoader)))
    except yaml.YAMLError:
        return 0, 0  # the full load says what is wrong, in PyYAML's words
    for event in events:
        if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent | yaml.CollectionStartEvent):
            values += 1
            if values > MAX_VALUES:
                break
        if isinstance(event, yaml.CollectionStartEvent):
            level += 1
            depth = max(depth, level)
        elif isinstance(event, yaml.CollectionEndEvent):
            level -= 1
    return values, depth


def _bounded(events):
    for count, event in enumerate(events):
        if count > 3 * MAX_VALUES:
            return
        yield event


def _yaml_shape(root) -> tuple[int, int]:
    """(values, depth) of the document with every alias expanded, without expanding any:
    each distinct node is sized once (aliases point at the same node object). A recursive
    alias has no finite expansion: it counts as too large."""
    if root is None:
        return 0, 0
    too_large = (10 * MAX_VALUES + 1, MAX_DEPTH + 1)
    sizes: dict[int, tuple[int, int]] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = []
        if children_done:
            parts = [sizes[id(child)] for child in children]
            sizes[id(node)] = (1 + sum(p[0] for p in parts), 1 + max((p[1] for p in parts), default=0))
            open_nodes.discard(id(node))
            continue
        if id(node) in sizes:
            continue
        if id(node) in open_nodes:  # reached again from inside itself
            return too_large
        open_nodes.add(id(node))
        stack.append((node, True))
        stack.extend((child, False) for child in children if id(child) not in sizes)
    return sizes[id(root)]


def _json_shape(document) -> tuple[int, int]:
    values, depth = 0, 0
    stack = [(document, 1)]
    while stack and values <= MAX_VALUES:
        value, level = stack.pop()
        values, depth = values + 1, max(depth, level)
        if isinstance(value, dict):
            stack.extend((item, level + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, level + 1) for item in value)
    return values, depth


def _marks(text: str) -> dict[str, tuple[int, str | None]]:
    """path → (line, scalar as written), from YAML's node tree (JSON is YAML enough)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, ValueError):
        return {}
    marks: dict[str, tuple[int, str | None]] = {}
    stack = [(root, "")] if root is not None else []
    while stack and len(marks) < 100_000:  # aliases could make the walk explode
        node, path = stack.pop()
        raw = node.value if isinstance(node, yaml.ScalarNode) else None
        marks.setdefault(path, (node.start_mark.line + 1, raw))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    stack.append((value, f"{path}.{key.value}" if path else str(key.value)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in enumerate(node.value))
    return marks


_PARENT = re.compile(r"(\.[^.\[\]]+|\[\d+\])$")


def _canonical(number: Decimal) -> str:
    """'0.10' → '0.1', '1.00' → '1', '3000' → '3000': one spelling per value."""
    return format(number.normalize(), "f")


def _range_reason(minimum: Decimal | None, above: bool, maximum: Decimal | None) -> str:
    low = "" if minimum is None else f"{'more than' if above else 'at least'} {_canonical(minimum)}"
    high = "" if maximum is None else f"at most {_canonical(maximum)}"
    return "must be " + " and ".join(part for part in (low, high) if part)


class _Checker:
    """Typed readers over the loaded document: each reports its problem and returns None."""

    def __init__(self, report: PlanReport, marks: dict[str, tuple[int, str | None]]) -> None:
        self.report = report
        self.marks = marks

    def error(self, path: str, reason: str) -> None:
        probe = path
        while probe and probe not in self.marks:  # the nearest enclosing node with a line
            parent = _PARENT.sub("", probe)
            if parent == probe:  # a top-level key without a line of its own
                break
            probe = parent
        self.report.add(path, reason, self.marks[probe][0] if probe in self.marks else None)

    def written(self, path: str, value: Any) -> str:
        raw = self.marks.get(path, (0, None))[1]
        return raw if raw is not None else str(value)

    def mapping(self, value: Any, path: str, *, fields: list[str], what: str) -> dict | None:
        """The mapping at ``path``; a key outside ``fields`` is a problem (a typo must not pass)."""
        if not isinstance(value, dict):
            self.error(path, f"must be a mapping with the fields of {what} ({', '.join(fields)})")
            return None
        for key in value:
            if key not in fields:
                self.error(
                    f"{path}.{key}" if path else str(key),
                    f"is not a field of {what} (the fields are {', '.join(fields)})",
                )
        return value

    def decimal(
        self,
        value: Any,
        path: str,
        *,
        money: bool = False,
        minimum: Decimal | None = ZERO,
        above: bool = False,
        maximum: Decimal | None = None,
    ) -> str | None:
        if value is _MISSING or value is None:
            self.error(path, "is required")
            return None
        if isinstance(value, int | float | Decimal | _Number) and not isinstance(value, bool):
            written = self.written(path, value)
            self.error(path, f'write decimals as strings ("{written}"), not numbers, so no float ever reaches money')
            return None
        if not isinstance(value, str):
            self.error(path, f'must be a decimal written as a string, like "0.10"; found {type(value).__name__}')
            return None
        places, digits = (MONEY_PLACES, MONEY_DIGITS) if money else (RATIO_PLACES, RATIO_DIGITS)
        try:
            number = parse_decimal(value.strip(), places=places, digits=digits)
        except CellError as exc:
            self.error(path, str(exc))
            return None
        too_low = minimum is not None and (number <= minimum if above else number < minimum)
        if too_low or (maximum is not None and number > maximum):
            self.error(path, f'"{value}" — {_range_reason(minimum, above, maximum)}')
            return None
        return _canonical(number)

    def whole(self, value: Any, path: str, *, minimum: int, maximum: int, unit: str = "days") -> int | None:
        if value is _MISSING or value is None:
            self.error(path, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(
                path, f'"{self.written(path, value)}" — must be a whole number of {unit}, written without quotes'
            )
            return None
        if not minimum <= value <= maximum:
            self.error(path, f"{value} — must be from {minimum} to {maximum}")
            return None
        return value

    def date(self, value: Any, path: str) -> dt.date | None:
        if value is _MISSING or value is None:
            self.error(path, "is required")
            return None
        try:
            return parse_date(str(value).strip())
        except CellError as exc:
            self.error(path, str(exc))
            return None

    def text(self, value: Any, path: str, *, max_length: int) -> str | None:
        if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
            self.error(path, "is required")
            return None
        if not isinstance(value, str):
            self.error(path, f'"{self.written(path, value)}" — must be text')
            return None
        if "\x00" in value:  # PostgreSQL cannot hold it: a lookup or a write with it was a 500
            self.error(path, "contains a NUL character (\\x00), which text cannot hold")
            return None
        if len(value.strip()) > max_length:
            self.error(path, f"is longer than {max_length} characters")
            return None
        return value.strip()

    def choice(self, value: Any, path: str, choices: list[str], *, default: str | None = None) -> str | None:
        if (value is _MISSING or value is None) and default is not None:
            return default
        if value not in choices:
            shown = "nothing" if value is _MISSING or value is None else f'"{self.written(path, value)}"'
            self.error(path, f"{shown} — must be one of {', '.join(choices)}")
            return None
        return value

    def boolean(self, value: Any, path: str) -> bool | None:
        if not isinstance(value, bool):
            shown = "nothing" if value is _MISSING or value is None else f'"{self.written(path, value)}"'
            self.error(path, f"{shown} — must be true or false")
            return None
        return value

    def items(self, value: Any, path: str, *, required: bool = True) -> list | None:
        if value is _MISSING or value is None:
            if required:
                self.error(path, "is required (a list)")
            return None if required else []
        if not isinstance(value, list):
            self.error(path, "must be a list")
            return None
        if required and not value:
            self.error(path, "must not be empty")
            return None
        return value


def _get(mapping: dict, key: str) -> Any:
    return mapping.get(key, _MISSING)


# --- Each plan type's parameters ------------------------------------------------------


def _tiers(check: _Checker, value: Any, path: str) -> list[dict] | None:
    """Accelerator tiers, sorted by threshold; thresholds > 0 and distinct, multipliers ≥ 1."""
    items = check.items(value, path, required=False)
    if items is None:
        return None
    tiers: list[tuple[int, dict]] = []
    ok = True
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        if check.mapping(item, at, fields=["above_attainment", "multiplier"], what="a tier") is None:
            ok = False
            continue
        threshold = check.decimal(_get(item, "above_attainment"), f"{at}.above_attainment", above=True)
        multiplier = check.decimal(_get(item, "multiplier"), f"{at}.multiplier", minimum=ONE)
        if threshold is None or multiplier is None:
            ok = False
            continue
        tiers.append((i, {"above_attainment": threshold, "multiplier": multiplier}))
    seen: dict[Decimal, int] = {}
    for i, tier in tiers:
        threshold = Decimal(tier["above_attainment"])
        if threshold in seen:
            check.error(
                f"{path}[{i}].above_attainment",
                f'"{check.written(f"{path}[{i}].above_attainment", threshold)}" — '
                f"{path.rsplit('.', 1)[-1]}[{seen[threshold]}] has the same threshold",
            )
            ok = False
        seen.setdefault(threshold, i)
    if not ok:
        return None
    return [tier for _, tier in sorted(tiers, key=lambda pair: Decimal(pair[1]["above_attainment"]))]


def _shares_by_day(check: _Checker, value: Any, path: str, *, first_day: int, with_floor: bool) -> list[dict] | None:
    """Dated shares (a payout schedule, quota-credit milestones): days ascending and distinct,
    shares > 0 adding up to exactly 1."""
    items = check.items(value, path)
    if items is None:
        return None
    fields = ["at_day", "share", "burn_floor"] if with_floor else ["at_day", "share"]
    entries: list[dict] = []
    ok = True
    last_day, total, last_share = None, ZERO, None
    for i, item in enumerate(items):
        at = f"{path}[{i}]"
        if check.mapping(item, at, fields=fields, what="a dated share") is None:
            ok = False
            continue
        day = check.whole(_get(item, "at_day"), f"{at}.at_day", minimum=first_day, maximum=MAX_DAY)
        share = check.decimal(_get(item, "share"), f"{at}.share", above=True, maximum=ONE)
        entry: dict[str, Any] = {"at_day": day, "share": share}
        if with_floor and _get(item, "burn_floor") not in (_MISSING, None):
            entry["burn_floor"] = check.decimal(_get(item, "burn_floor"), f"{at}.burn_floor", above=True, maximum=ONE)
            if day == 0:
                check.error(f"{at}.burn_floor", "the share paid at signature (day 0) cannot have a burn floor")
                ok = False
        if day is not None and last_day is not None and day <= last_day:
            check.error(f"{at}.at_day", f"{day} — days must go up: the entry before is at day {last_day}")
            ok = False
        if None in entry.values():
            ok = False
            continue
        last_day = day
        total += Decimal(share)
        last_share = (f"{at}.share", item["share"])
        entries.append(entry)
    if ok and total != ONE and last_share:
        check.error(last_share[0], f'"{last_share[1]}" — shares add up to {_canonical(total)}, they must add up to 1')
        ok = False
    return entries if ok else None


def _land(check: _Checker, doc: dict, path: str) -> dict | None:
    params: dict[str, Any] = {
        "base_rate": check.decimal(_get(doc, "base_rate"), f"{path}.base_rate", above=True, maximum=ONE),
        "accelerators": _tiers(check, _get(doc, "accelerators"), f"{path}.accelerators"),
        "schedule": _shares_by_day(check, _get(doc, "schedule"), f"{path}.schedule", first_day=0, with_floor=True),
        "recheck": check.choice(_get(doc, "recheck"), f"{path}.recheck", [DEFAULT_RECHECK], default=DEFAULT_RECHECK),
    }
    clawback = _get(doc, "clawback")
    params["clawback"] = None
    ok = True
    if clawback not in (_MISSING, None):
        at = f"{path}.clawback"
        if check.mapping(clawback, at, fields=["at_day", "burn_floor", "mode"], what="a clawback") is None:
            ok = False
        else:
            params["clawback"] = {
                "at_day": check.whole(_get(clawback, "at_day"), f"{at}.at_day", minimum=1, maximum=MAX_DAY),
                "burn_floor": check.decimal(_get(clawback, "burn_floor"), f"{at}.burn_floor", above=True, maximum=ONE),
                "mode": check.choice(_get(clawback, "mode"), f"{at}.mode", ["hard", "soft"]),
            }
            ok = None not in params["clawback"].values()
            last_day = params["schedule"][-1]["at_day"] if params["schedule"] else None
            day = params["clawback"]["at_day"]
            if day is not None and last_day is not None and day <= last_day:
                check.error(f"{at}.at_day", f"{day} — the clawback must come after the last payout (day {last_day})")
                ok = False
    credit = _get(doc, "quota_credit")
    params["quota_credit"] = {"basis": "committed_arr"}
    if credit not in (_MISSING, None):
        at = f"{path}.quota_credit"
        if check.mapping(credit, at, fields=["basis", "milestones"], what="a quota credit") is None:
            ok = False
        else:
            basis = check.choice(_get(credit, "basis"), f"{at}.basis", ["committed_arr", "estimate"])
            if basis == "estimate":
                milestones = _shares_by_day(
                    check, _get(credit, "milestones"), f"{at}.milestones", first_day=1, with_floor=False
                )
                params["quota_credit"] = {"basis": basis, "milestones": milestones}
                ok = ok and milestones is not None
            elif basis == "committed_arr" and _get(credit, "milestones") is not _MISSING:
                check.error(f"{at}.milestones", "milestones are only for basis: estimate")
                ok = False
            ok = ok and basis is not None
    basis = check.choice(_get(doc, "payment_basis"), f"{path}.payment_basis", PAYMENT_BASES, default="booked")
    refunds = _get(doc, "refund_clawback")
    refunds = False if refunds in (_MISSING, None) else check.boolean(refunds, f"{path}.refund_clawback")
    if basis == "paid":
        params["payment_basis"] = basis
    if refunds:
        params["refund_clawback"] = True
    ok = ok and basis is not None and refunds is not None
    if not ok or any(params[key] is None for key in ("base_rate", "accelerators", "schedule", "recheck")):
        return None
    return params


def _expand(check: _Checker, doc: dict, path: str) -> dict | None:
    split = _get(doc, "credit_split_months")
    params = {
        "rate": check.decimal(_get(doc, "rate"), f"{path}.rate", above=True, maximum=ONE),
        "tiers": _tiers(check, _get(doc, "tiers"), f"{path}.tiers"),
        "credit_split_months": 12
        if split is _MISSING
        else check.whole(split, f"{path}.credit_split_months", minimum=0, maximum=120, unit="months"),
    }
    return None if None in params.values() else params


def _spiff(check: _Checker, doc: dict, path: str) -> dict | None:
    params: dict[str, str | None] = {}
    ok = True
    for key, money in (("new_workload", True), ("new_region", True), ("new_sku_rate", False), ("recommit_rate", False)):
        value = _get(doc, key)
        if value in (_MISSING, None):
            params[key] = None
            continue
        params[key] = check.decimal(value, f"{path}.{key}", money=money, above=True, maximum=None if money else ONE)
        ok = ok and params[key] is not None
    if ok and not any(params.values()):
        check.error(path, "a SPIFF plan needs at least one of new_workload, new_region, new_sku_rate, recommit_rate")
        ok = False
    return params if ok else None


def _cs(check: _Checker, doc: dict, path: str) -> dict | None:
    bonus = check.decimal(_get(doc, "target_bonus"), f"{path}.target_bonus", money=True, above=True)
    items = check.items(_get(doc, "curve"), f"{path}.curve")
    points: list[dict] = []
    ok = bonus is not None and items is not None
    last = None
    for i, item in enumerate(items or []):
        at = f"{path}.curve[{i}]"
        if check.mapping(item, at, fields=["nrr", "payout"], what="a curve point") is None:
            ok = False
            continue
        nrr = check.decimal(_get(item, "nrr"), f"{at}.nrr")
        payout = check.decimal(_get(item, "payout"), f"{at}.payout")
        if nrr is not None and last is not None and Decimal(nrr) <= last:
            check.error(
                f"{at}.nrr", f'"{item["nrr"]}" — NRR points must go up: the point before is at {_canonical(last)}'
            )
            ok = False
        if nrr is None or payout is None:
            ok = False
            continue
        last = Decimal(nrr)
        points.append({"nrr": nrr, "payout": payout})
    return {"target_bonus": bonus, "curve": points} if ok else None


def _pilot(check: _Checker, doc: dict, path: str) -> dict | None:
    rate = check.decimal(_get(doc, "rate"), f"{path}.rate", above=True, maximum=ONE)
    accounts: list[str] = []
    items = check.items(_get(doc, "accounts"), f"{path}.accounts")
    ok = rate is not None and items is not None
    for i, item in enumerate(items or []):
        account = check.text(item, f"{path}.accounts[{i}]", max_length=100)
        if account in accounts:
            check.error(f"{path}.accounts[{i}]", f'"{account}" — listed twice')
            ok = False
        elif account is None:
            ok = False
        else:
            accounts.append(account)
    window = _get(doc, "window")
    start = end = None
    if check.mapping(window, f"{path}.window", fields=["start", "end"], what="a window") is None:
        ok = False
    else:
        start = check.date(_get(window, "start"), f"{path}.window.start")
        end = check.date(_get(window, "end"), f"{path}.window.end")
        if start and end and end < start:
            check.error(f"{path}.window.end", f"{end} is before the start ({start})")
            ok = False
        ok = ok and start is not None and end is not None
    comparison = check.choice(_get(doc, "comparison"), f"{path}.comparison", ["segment"], default="segment")
    if not ok or comparison is None:
        return None
    return {
        "rate": rate,
        "accounts": accounts,
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "comparison": comparison,
    }


def _draw(check: _Checker, doc: dict, path: str) -> dict | None:
    params = {
        "monthly_amount": check.decimal(_get(doc, "monthly_amount"), f"{path}.monthly_amount", money=True, above=True),
        "months": check.whole(_get(doc, "months"), f"{path}.months", minimum=1, maximum=60, unit="months"),
        "recoverable": check.boolean(_get(doc, "recoverable"), f"{path}.recoverable"),
    }
    return None if None in params.values() else params


PARAMETER_READERS: dict[str, Callable[[_Checker, dict, str], dict | None]] = {
    PlanType.LAND: _land,
    PlanType.EXPAND: _expand,
    PlanType.SPIFF: _spiff,
    PlanType.CS: _cs,
    PlanType.PILOT: _pilot,
    PlanType.DRAW: _draw,
}


# --- The document as a whole --------------------------------------------------------------


@dataclass
class _Version:
    path: str
    name: str
    type: str
    effective_from: dt.date
    parameters: dict


@dataclass
class _Assignment:
    path: str
    email: str
    plan: str
    start: dt.date
    end: dt.date | None
    quota: Decimal
    quota_period: str
    ramp_relief: list[str]

    def overlaps(self, start: dt.date, end: dt.date | None) -> bool:
        return (end is None or self.start <= end) and (self.end is None or start <= self.end)


def _read_plan(check: _Checker, entry: Any, path: str) -> _Version | None:
    plan_type = _get(entry, "type") if isinstance(entry, dict) else None
    # Only text can name a type: a list or mapping there (``type: [land]``) is reported by
    # ``check.choice`` below, not looked up (it is unhashable: that was a 500).
    if isinstance(plan_type, str) and plan_type in TYPE_FIELDS:
        fields, what = PLAN_FIELDS + TYPE_FIELDS[plan_type], f"a {plan_type} plan"
    else:  # the type is reported below; meanwhile accept any type's fields
        fields, what = list(dict.fromkeys(sum(TYPE_FIELDS.values(), PLAN_FIELDS))), "a plan"
    elsewhere = isinstance(plan_type, str) and plan_type in WHY_NOT_ON_PAYMENT
    if check.mapping(entry, path, fields=fields + (PAYMENT_FIELDS if elsewhere else []), what=what) is None:
        return None
    refused = False
    for key in PAYMENT_FIELDS if elsewhere else ():
        if key in entry:
            check.error(
                f"{path}.{key}",
                f"applies to land plans only; {'an' if plan_type[0] in 'aeiou' else 'a'} {plan_type} plan is "
                f"always paid as booked: "
                f"{WHY_NOT_ON_PAYMENT[plan_type]}",
            )
            refused = True
    name = check.text(_get(entry, "name"), f"{path}.name", max_length=NAME_MAX)
    plan_type = check.choice(plan_type, f"{path}.type", list(PlanType.values))
    effective_from = check.date(_get(entry, "effective_from"), f"{path}.effective_from")
    parameters = PARAMETER_READERS[plan_type](check, entry, path) if plan_type else None
    if refused or None in (name, plan_type, effective_from, parameters):
        return None
    return _Version(path, name, plan_type, effective_from, parameters)


def _read_assignment(check: _Checker, entry: Any, path: str) -> _Assignment | None:
    if check.mapping(entry, path, fields=ASSIGNMENT_FIELDS, what="an assignment") is None:
        return None
    email = check.text(_get(entry, "email"), f"{path}.email", max_length=254)
    plan = check.text(_get(entry, "plan"), f"{path}.plan", max_length=NAME_MAX)
    start = check.date(_get(entry, "start"), f"{path}.start")
    end = None if _get(entry, "end") in (_MISSING, None) else check.date(entry["end"], f"{path}.end")
    ok = not (_get(entry, "end") not in (_MISSING, None) and end is None)
    if start and end and end < start:
        check.error(f"{path}.end", f"{end} is before the start ({start})")
        ok = False
    quota = _get(entry, "quota")
    quota = "0" if quota is _MISSING else check.decimal(quota, f"{path}.quota", money=True)
    period = check.choice(
        _get(entry, "quota_period"), f"{path}.quota_period", list(QuotaPeriod.values), default="quarter"
    )
    ramp: list[str] | None = DEFAULT_RAMP
    if _get(entry, "ramp_relief") not in (_MISSING, None):
        items = check.items(entry["ramp_relief"], f"{path}.ramp_relief")
        if items is not None and len(items) != 4:
            check.error(f"{path}.ramp_relief", f"has {len(items)} values; give 4, one per quarter of tenure")
            items = None
        ramp = None
        if items is not None:
            ramp = [check.decimal(item, f"{path}.ramp_relief[{i}]", maximum=ONE) for i, item in enumerate(items)]
            ramp = None if None in ramp else ramp
    if not ok or None in (email, plan, start, quota, period, ramp):
        return None
    return _Assignment(path, email.lower(), plan, start, end, Decimal(quota), period, ramp)


def _check_versions(check: _Checker, versions: list[_Version], stored: dict[str, Plan]) -> list[_Version]:
    """The versions to create; reports conflicts with each other and with stored versions."""
    seen: dict[tuple[str, dt.date], str] = {}
    type_of: dict[str, tuple[str, str]] = {}
    new: list[_Version] = []
    for version in versions:
        key = (version.name, version.effective_from)
        if key in seen:
            check.error(
                f"{version.path}.effective_from", f"{version.effective_from} — {seen[key]} is the same plan version"
            )
            continue
        seen[key] = version.path
        plan = stored.get(version.name)
        first = type_of.setdefault(version.name, (version.type, version.path))
        if plan is not None and plan.type != version.type:
            check.error(
                f"{version.path}.type",
                f'"{version.type}" — the plan {plan.name} is a {plan.type} plan; a plan\'s type never changes, '
                "give a new plan another name",
            )
            continue
        if first[0] != version.type:
            check.error(f"{version.path}.type", f'"{version.type}" — {first[1]} makes {version.name} a {first[0]} plan')
            continue
        existing = {v.effective_from: v for v in plan.known_versions} if plan else {}
        if version.effective_from in existing:
            if existing[version.effective_from].parameters != version.parameters:
                check.error(
                    f"{version.path}.effective_from",
                    f"version from {version.effective_from} exists with other parameters; "
                    "give the new version a later effective_from",
                )
            continue  # the same version again: nothing to do
        new.append(version)
    # Only now is it known which of a plan's versions are new: check they all come last.
    for version in new:
        plan = stored.get(version.name)
        if plan is None:
            continue
        latest = plan.known_versions[-1] if plan.known_versions else None
        if latest and version.effective_from < latest.effective_from:
            check.error(
                f"{version.path}.effective_from",
                f"{version.effective_from} is before the latest version (v{latest.version} from "
                f"{latest.effective_from}); a new version must start after it, so nothing computed changes",
            )
        elif plan.last_computed and version.effective_from < add_months(plan.last_computed, 1):
            check.error(
                f"{version.path}.effective_from",
                f"{version.effective_from} falls in months already computed under this plan (ledger lines up to "
                f"{plan.last_computed:%Y-%m}); start the new version on {add_months(plan.last_computed, 1)} or later",
            )
    return new


def _check_assignments(
    check: _Checker,
    assignments: list[_Assignment],
    *,
    plan_starts: dict[str, dt.date],
    people: dict[str, User],
    stored: dict[tuple[int, str], list[Assignment]],
) -> list[_Assignment]:
    """The assignments to create; reports unknown people and plans, and overlaps."""
    new: list[_Assignment] = []
    placed: dict[tuple[str, str], list[_Assignment]] = {}
    for a in assignments:
        person = people.get(a.email)
        if person is None:
            check.error(f"{a.path}.email", f'"{a.email}" — no person with this email')
        if a.plan not in plan_starts:
            check.error(f"{a.path}.plan", f'"{a.plan}" — no plan with this name in the document or stored')
        elif a.start < plan_starts[a.plan]:
            check.error(
                f"{a.path}.start",
                f"{a.start} is before the plan's first version (from {plan_starts[a.plan]}); the plan has no terms then",
            )
            continue
        if person is None or a.plan not in plan_starts:
            continue
        same = [
            s
            for s in stored.get((person.pk, a.plan), [])
            if (s.start_on, s.end_on, s.quota, s.quota_period, s.ramp_relief)
            == (a.start, a.end, a.quota, a.quota_period, a.ramp_relief)
        ]
        clash = next(
            (s for s in stored.get((person.pk, a.plan), []) if s not in same and a.overlaps(s.start_on, s.end_on)), None
        )
        if clash is not None:
            until = f"to {clash.end_on}" if clash.end_on else "with no end"
            check.error(
                a.path,
                f"{a.email} is already on {a.plan} from {clash.start_on} {until} (stored, quota "
                f"{_canonical(clash.quota)} per {clash.quota_period}); a person's assignments to one plan may not "
                "overlap, and an import does not change stored assignments",
            )
            continue
        earlier = next((b for b in placed.get((a.email, a.plan), []) if b.overlaps(a.start, a.end)), None)
        if earlier is not None:
            check.error(
                a.path,
                f"{a.email} is already on {a.plan} for these dates in {earlier.path}; assignments may not overlap",
            )
            continue
        placed.setdefault((a.email, a.plan), []).append(a)
        if not same:
            new.append(a)
    return new


def _read_document(
    data: bytes, filename: str, report: PlanReport
) -> tuple[_Checker, list, list[_Version], list[_Assignment]]:
    """The document's checker, plan entries as written, and the versions and assignments
    read from it (each problem in ``report``); raises ``PlansRejected`` when the document
    cannot be read as a plan document at all."""
    if len(data) > MAX_BYTES:
        report.add("", f"the file is larger than {MAX_BYTES // 1_000_000} MB")
        raise PlansRejected(report)
    document = _load(data, filename, report)
    if not report.ok:
        raise PlansRejected(report)
    check = _Checker(report, _marks(data.decode("utf-8-sig")))
    if document is None or check.mapping(document, "", fields=["plans", "assignments"], what="a plan document") is None:
        if document is None:
            check.error("", "the document is empty; it needs plans: and/or assignments:")
        raise PlansRejected(report)
    plan_entries = check.items(_get(document, "plans"), "plans", required=False) or []
    assignment_entries = check.items(_get(document, "assignments"), "assignments", required=False) or []
    if not plan_entries and not assignment_entries and report.ok:
        check.error("", "the document has no plans and no assignments")
    versions = [v for i, entry in enumerate(plan_entries) if (v := _read_plan(check, entry, f"plans[{i}]"))]
    assignments = [
        a for i, entry in enumerate(assignment_entries) if (a := _read_assignment(check, entry, f"assignments[{i}]"))
    ]
    return check, plan_entries, versions, assignments


@dataclass
class CheckedDocument:
    """A document read and checked without writing: its versions and assignments, the
    report (``ok`` when nothing is wrong) and the checker, for a caller's own rules."""

    report: PlanReport
    versions: list[_Version]
    assignments: list[_Assignment]
    check: _Checker | None


def plans_validate(*, data: bytes, filename: str) -> CheckedDocument:
    """Read and check a document as ``plans_import`` does, writing nothing: every value of
    every plan and assignment (path, line, reason) and the pilot accounts. The rules that
    compare it with what is stored (when a new version may start, overlapping assignments)
    are ``plans_import``'s when the document is imported."""
    report = PlanReport()
    try:
        check, _entries, versions, assignments = _read_document(data, filename, report)
    except PlansRejected:
        return CheckedDocument(report, [], [], None)
    _check_pilot_accounts(check, versions)
    report.errors.sort(key=lambda error: error["line"] or 0)  # stable: document order
    return CheckedDocument(report, versions, assignments, check)


def plans_import(*, data: bytes, filename: str, user: User | None = None) -> PlanReport:
    """Import a plan document, or raise ``PlansRejected`` having written nothing.

    The summary counts plans and versions created, versions unchanged, and assignments
    created and unchanged.
    """
    report = PlanReport()
    check, plan_entries, versions, assignments = _read_document(data, filename, report)

    with transaction.atomic():
        names = {v.name for v in versions} | {a.plan for a in assignments}
        stored = _stored_plans(names)
        _check_pilot_accounts(check, versions)
        new_versions = _check_versions(check, versions, stored)
        # When each plan's terms begin. A plan name the document defines with a bad version
        # still counts as known, so an assignment to it is not reported as a second problem.
        plan_starts = {
            name: plan.known_versions[0].effective_from for name, plan in stored.items() if plan.known_versions
        }
        for version in versions:
            plan_starts[version.name] = min(
                plan_starts.get(version.name, version.effective_from), version.effective_from
            )
        for entry in plan_entries:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                plan_starts.setdefault(entry["name"].strip(), dt.date.min)
        people = {
            person.email.lower(): person
            for person in User.objects.annotate(email_ci=Lower("email")).filter(
                email_ci__in={a.email for a in assignments}
            )
        }
        stored_assignments: dict[tuple[int, str], list[Assignment]] = {}
        for row in Assignment.objects.filter(person__in=people.values(), plan__name__in=names).select_related("plan"):
            stored_assignments.setdefault((row.person_id, row.plan.name), []).append(row)
        new_assignments = _check_assignments(
            check, assignments, plan_starts=plan_starts, people=people, stored=stored_assignments
        )
        if not report.ok:
            report.errors.sort(key=lambda error: error["line"] or 0)  # stable: document order
            raise PlansRejected(report)
        try:
            with transaction.atomic():
                report.summary = _apply(new_versions, new_assignments, stored, people, filename=filename, user=user)
        except IntegrityError:
            report.add("", "the same plans were changed by someone else during the import; try again")
            raise PlansRejected(report) from None
    report.summary |= {
        "versions_unchanged": len(versions) - report.summary["versions_created"],
        "assignments_unchanged": len(assignments) - report.summary["assignments_created"],
    }
    return report


def _stored_plans(names: set[str]) -> dict[str, Plan]:
    """The stored plans named, locked, with their versions and the last month computed under them."""
    plans = {plan.name: plan for plan in Plan.objects.select_for_update().filter(name__in=names)}
    versions = PlanVersion.objects.filter(plan__in=plans.values()).order_by("effective_from")
    by_plan: dict[int, list[PlanVersion]] = {}
    for version in versions:
        by_plan.setdefault(version.plan_id, []).append(version)
    computed = {
        row["plan_version__plan"]: row["last"]
        for row in LedgerLine.objects.filter(plan_version__plan__in=plans.values())
        .values("plan_version__plan")
        .annotate(last=Max("period"))
    }
    for plan in plans.values():
        plan.known_versions = by_plan.get(plan.pk, [])
        plan.last_computed = month_start(computed[plan.pk]) if plan.pk in computed else None
    return plans


def _check_pilot_accounts(check: _Checker, versions: list[_Version]) -> None:
    wanted = {account for v in versions if v.type == PlanType.PILOT for account in v.parameters["accounts"]}
    known = set(Account.objects.filter(external_id__in=wanted).values_list("external_id", flat=True))
    for version in versions:
        if version.type != PlanType.PILOT:
            continue
        for i, account in enumerate(version.parameters["accounts"]):
            if account not in known:
                check.error(f"{version.path}.accounts[{i}]", f'"{account}" — no account with this external id')


def _apply(
    versions: list[_Version],
    assignments: list[_Assignment],
    stored: dict[str, Plan],
    people: dict[str, User],
    *,
    filename: str,
    user: User | None,
) -> dict[str, int]:
    plans = dict(stored)
    plans_created = 0
    next_number = {name: max((v.version for v in plan.known_versions), default=0) + 1 for name, plan in stored.items()}
    # In date order, so version numbers follow effective dates.
    for version in sorted(versions, key=lambda v: (v.name, v.effective_from)):
        if version.name not in plans:
            plans[version.name] = Plan.objects.create(name=version.name, type=version.type)
            plans_created += 1
        number = next_number.get(version.name, 1)
        next_number[version.name] = number + 1
        PlanVersion.objects.create(
            plan=plans[version.name],
            version=number,
            effective_from=version.effective_from,
            parameters=version.parameters,
            source=filename[:200],
            created_by=user if user is not None and user.is_authenticated else None,
        )
    Assignment.objects.bulk_create(
        Assignment(
            person=people[a.email],
            plan=plans[a.plan],
            start_on=a.start,
            end_on=a.end,
            quota=a.quota,
            quota_period=a.quota_period,
            ramp_relief=a.ramp_relief,
        )
        for a in assignments
    )
    return {
        "plans_created": plans_created,
        "versions_created": len(versions),
        "assignments_created": len(assignments),
    }


# --- Reading plans back: pages and export ---------------------------------------------------


def plan_list() -> QuerySet[Plan]:
    """Every plan with its versions (oldest first) and how many assignments it has."""
    return Plan.objects.annotate(assignment_count=Count("assignments")).prefetch_related(
        Prefetch("versions", queryset=PlanVersion.objects.select_related("created_by").order_by("effective_from"))
    )


def plan_assignments(plan: Plan) -> QuerySet[Assignment]:
    return plan.assignments.select_related("person").order_by("start_on", "person__name")


def plan_document(plan: Plan) -> dict:
    """The plan's versions and assignments as a document the importer accepts unchanged."""
    versions = []
    for version in plan.versions.order_by("effective_from"):
        entry: dict[str, Any] = {"name": plan.name, "type": plan.type, "effective_from": version.effective_from}
        for key in TYPE_FIELDS[plan.type]:
            if key in version.parameters:
                entry[key] = version.parameters[key]
        versions.append(entry)
    assignments = []
    for a in plan_assignments(plan):
        entry = {"email": a.person.email, "plan": plan.name, "start": a.start_on}
        if a.end_on:
            entry["end"] = a.end_on
        entry |= {
            "quota": _canonical(a.quota),
            "quota_period": a.quota_period,
            "ramp_relief": a.ramp_relief or DEFAULT_RAMP,
        }
        assignments.append(entry)
    return {"plans": versions, "assignments": assignments} if assignments else {"plans": versions}


def plan_yaml(plan: Plan) -> str:
    header = f"# {plan.name}: every version and assignment, as stored. Re-importing this file changes nothing.\n"
    return header + yaml.safe_dump(
        plan_document(plan), sort_keys=False, allow_unicode=True, default_flow_style=None, width=100
    )


# --- Plans in words --------------------------------------------------------------------


def _pct(value: str) -> str:
    return f"{_canonical(Decimal(value) * 100)}%"


def _money(value: str) -> str:
    number = Decimal(value)
    return f"${number:,.2f}" if number != number.to_integral_value() else f"${number:,.0f}"


def _times(value: str) -> str:
    return f"{_canonical(Decimal(value))}×"


def _tiers_text(tiers: list[dict]) -> str:
    parts = [f"{_times(t['multiplier'])} above {_pct(t['above_attainment'])}" for t in tiers]
    if not parts:
        return "no accelerator"
    parts[0] += " attainment"
    return ", ".join(parts)


def describe(plan_type: str, parameters: dict) -> list[str]:
    """A version's terms as short clauses, e.g. for a land plan: "10% of committed ARR",
    "1.5× above 100% attainment", "50% at signature, 50% at day 90 if burn ≥ 25%",
    "clawback at day 365 if burn < 40% (hard)"."""
    p = parameters
    if plan_type == PlanType.LAND:
        schedule = []
        for entry in p["schedule"]:
            when = "at signature" if entry["at_day"] == 0 else f"at day {entry['at_day']}"
            floor = f" if burn ≥ {_pct(entry['burn_floor'])}" if "burn_floor" in entry else ""
            schedule.append(f"{_pct(entry['share'])} {when}{floor}")
        clauses = [f"{_pct(p['base_rate'])} of committed ARR", _tiers_text(p["accelerators"]), ", ".join(schedule)]
        clawback = p.get("clawback")
        if any("burn_floor" in entry for entry in p["schedule"]):
            until = clawback["at_day"] if clawback else RECHECK_UNTIL_DAY
            clauses.append(f"held shares re-checked {p.get('recheck', DEFAULT_RECHECK)} until day {until}")
        clauses.append(
            f"clawback at day {clawback['at_day']} if burn < {_pct(clawback['burn_floor'])} ({clawback['mode']})"
            if clawback
            else "no clawback"
        )
        credit = p.get("quota_credit") or {"basis": "committed_arr"}
        if credit["basis"] == "estimate":
            steps = ", ".join(f"{_pct(m['share'])} at day {m['at_day']}" for m in credit["milestones"])
            clauses.append(f"quota credited on the consumption estimate at signing, the rest {steps}")
        if p.get("payment_basis") == "paid":
            clauses.append("each share paid once the invoice billing its day is paid")
        if p.get("refund_clawback"):
            clauses.append("refunds and credit notes claw back their share of the commission paid on the invoice")
        return clauses
    if plan_type == PlanType.EXPAND:
        return [
            f"{_pct(p['rate'])} of net-new ARR from consumption",
            _tiers_text(p["tiers"]),
            f"expansion credited to the AE for {p['credit_split_months']} months after land, to CS after",
        ]
    if plan_type == PlanType.SPIFF:
        clauses = []
        if p.get("new_workload"):
            clauses.append(f"{_money(p['new_workload'])} per new workload live")
        if p.get("new_region"):
            clauses.append(f"{_money(p['new_region'])} per new region activated")
        if p.get("new_sku_rate"):
            clauses.append(f"{_pct(p['new_sku_rate'])} of a new SKU's incremental ARR")
        if p.get("recommit_rate"):
            clauses.append(f"{_pct(p['recommit_rate'])} of new TCV on a multi-year recommit at a higher floor")
        return clauses
    if plan_type == PlanType.CS:
        points = ", ".join(f"{_pct(c['payout'])} at {_pct(c['nrr'])} NRR" for c in p["curve"])
        return [
            f"{_money(p['target_bonus'])} target bonus on the NRR of the book",
            f"{points} (linear between, flat outside)",
        ]
    if plan_type == PlanType.PILOT:
        accounts = p["accounts"]
        shown = ", ".join(accounts[:5]) + (f" and {len(accounts) - 5} more" if len(accounts) > 5 else "")
        return [
            f"{_pct(p['rate'])} of net-new consumption revenue",
            f"on {len(accounts)} account{'s' if len(accounts) != 1 else ''} ({shown})",
            f"from {p['window']['start']} to {p['window']['end']}",
            "compared with same-segment accounts outside the pilot",
        ]
    if plan_type == PlanType.DRAW:
        return [
            f"{_money(p['monthly_amount'])} a month for {p['months']} month{'s' if p['months'] != 1 else ''}",
            "recovered against later commission" if p["recoverable"] else "not recovered",
        ]
    return []
