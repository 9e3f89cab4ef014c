"""Import accounts, contracts and owners from CSV: upsert by natural key, all-or-nothing.

Every row is checked, and every reference resolved with one query per table, before
anything is written; one bad row rejects the file with a report of every problem (see
``revops.tabular``). The columns are documented in docs/imports.md.

An optional column missing from the header leaves the stored values alone (new rows get
the default); a column that is present but blank in a row means "blank" or the default.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import BinaryIO

from django.apps import apps
from django.db import connection
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower

from accounts.models import Account, AccountStatus, Contract, OwnerRole, Ownership, PricingModel, Segment
from revops.models import User
from revops.tabular import (
    QUANTITY_DIGITS,
    QUANTITY_PLACES,
    ImportReport,
    Row,
    all_or_nothing,
    find_cycles,
    read_rows,
    reject_if_any,
)

BATCH = 2000
EXTERNAL_ID_MAX = Account._meta.get_field("external_id").max_length


def _summary(report: ImportReport, *, rows: int, created: int, updated: int) -> ImportReport:
    report.summary = {"created": created, "updated": updated, "unchanged": rows - created - updated}
    return report


def _with_ancestors(model: type, *, key: str, parent: str, keys: set[str]) -> RawSQL:
    """Ids of the rows whose ``key`` is in ``keys`` and of all their ancestors, for ``pk__in``."""
    table = model._meta.db_table
    # Only model metadata is interpolated; the keys are a parameter.
    return RawSQL(  # noqa: S611
        f"""
        WITH RECURSIVE chain (id, up) AS (
            SELECT id, {parent} FROM {table} WHERE {key} = ANY(%s)
            UNION
            SELECT t.id, t.{parent} FROM {table} t JOIN chain c ON t.id = c.up
        )
        SELECT id FROM chain
        """,  # noqa: S608
        [list(keys)],
    )


def _allocate_ids(model: type, count: int) -> list[int]:
    """Primary keys for rows about to be created, so rows created together can point at each other.

    The foreign keys are deferred to commit, so the rows need not be inserted parents first.
    """
    if not count:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [model._meta.db_table, count],
        )
        return [pk for (pk,) in cursor.fetchall()]


def _bulk_update(model: type, objects: list, fields: list[str]) -> None:
    """``bulk_update`` as one ``UPDATE … FROM unnest(arrays)`` per batch.

    Django's ``bulk_update`` builds a CASE per row and field, which costs seconds of
    Python for the 20,000 rows an accounts file can have.
    """
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f'"{field.column}" = v.c{i}' for i, field in enumerate(columns))
    casts = ", ".join(f"%s::{field.db_type(connection)}[]" for field in [meta.pk, *columns])
    names = ", ".join(["id", *(f"c{i}" for i in range(len(columns)))])
    # Only model metadata is interpolated; the values are parameters.
    sql = f'UPDATE "{meta.db_table}" AS t SET {assignments} FROM unnest({casts}) AS v({names}) WHERE t.id = v.id'  # noqa: S608
    with connection.cursor() as cursor:
        for start in range(0, len(objects), BATCH):
            batch = objects[start : start + BATCH]
            arrays = [[obj.pk for obj in batch]]
            arrays += [
                [field.get_db_prep_save(getattr(obj, field.attname), connection) for obj in batch] for field in columns
            ]
            cursor.execute(sql, arrays)


# --- Accounts ------------------------------------------------------------------------

ACCOUNT_REQUIRED = ["external_id", "name", "segment"]
ACCOUNT_OPTIONAL = ["parent_external_id", "region", "industry", "status"]
SEGMENTS = {value: value for value in Segment.values} | {
    "mid market": Segment.MID_MARKET,
    "mid_market": Segment.MID_MARKET,
    "midmarket": Segment.MID_MARKET,
}
STATUSES = {value: value for value in AccountStatus.values}
ACCOUNT_FIELDS_AND_PARENT = ["name", "segment", "region", "industry", "status", "parent_id"]


@all_or_nothing
def import_accounts(stream: BinaryIO) -> ImportReport:
    """Create or update the accounts in the file, or raise ``ImportRejected`` having written nothing."""
    _, rows, report = read_rows(stream, required=ACCOUNT_REQUIRED, optional=ACCOUNT_OPTIONAL)
    parsed: dict[str, tuple[Row, dict[str, str], str | None]] = {}
    for row in rows:
        external_id = row.text("external_id", required=True, max_length=EXTERNAL_ID_MAX)
        values = {"name": row.text("name", required=True, max_length=200), "segment": row.choice("segment", SEGMENTS)}
        if row.has("region"):
            values["region"] = row.text("region", max_length=60)
        if row.has("industry"):
            values["industry"] = row.text("industry", max_length=80)
        if row.has("status"):
            values["status"] = row.choice("status", STATUSES, default=AccountStatus.ACTIVE)
        parent = row.text("parent_external_id") if row.has("parent_external_id") else None
        if external_id in parsed:
            row.error("external_id", f"{external_id} appears twice (first on line {parsed[external_id][0].line})")
        elif external_id:
            parsed[external_id] = (row, values, parent)
            if parent == external_id:
                row.error("parent_external_id", "an account cannot be its own parent")

    # The accounts of the file and the parents it names, with all their stored ancestors.
    referenced = set(parsed) | {parent for _, _, parent in parsed.values() if parent}
    stored = {
        account.pk: account
        for account in Account.objects.filter(
            pk__in=_with_ancestors(Account, key="external_id", parent="parent_id", keys=referenced)
        )
    }
    existing = {account.external_id: account for account in stored.values()}
    parent_of: dict[str, str | None] = {
        account.external_id: stored[account.parent_id].external_id if account.parent_id in stored else None
        for account in stored.values()
    }
    for external_id, (row, _, parent) in parsed.items():
        if parent is None:
            continue  # no parent column: the stored parent stays
        if parent and parent not in parsed and parent not in existing:
            row.error("parent_external_id", f"unknown account '{parent}' (not in this file or the database)")
            parent_of[external_id] = None
        else:
            parent_of[external_id] = parent or None
    for external_id, cycle in find_cycles(parent_of, list(parsed)).items():
        row = parsed[external_id][0]
        if len(cycle) > 2:  # a self-parent was reported above
            row.error("parent_external_id", f"makes a cycle of parents: {' → '.join(cycle)}")
    reject_if_any(report)

    created: list[Account] = []
    changed: list[Account] = []
    new_ids = iter(_allocate_ids(Account, sum(1 for key in parsed if key not in existing)))
    for external_id, (_, values, _) in parsed.items():
        if external_id not in existing:
            existing[external_id] = Account(pk=next(new_ids), external_id=external_id, **values)
            created.append(existing[external_id])
    created_ids = {account.pk for account in created}
    for external_id, (_, values, parent) in parsed.items():
        account = existing[external_id]
        before = [getattr(account, name) for name in ACCOUNT_FIELDS_AND_PARENT]
        for name, value in values.items():
            setattr(account, name, value)
        if parent is not None:
            account.parent_id = existing[parent].pk if parent else None
        if account.pk not in created_ids and [getattr(account, name) for name in ACCOUNT_FIELDS_AND_PARENT] != before:
            changed.append(account)
    Account.objects.bulk_create(created, batch_size=BATCH)
    _bulk_update(Account, changed, ACCOUNT_FIELDS_AND_PARENT)
    return _summary(report, rows=len(parsed), created=len(created), updated=len(changed))


# --- Contracts -----------------------------------------------------------------------

CONTRACT_REQUIRED = [
    "external_id",
    "account",
    "pricing_model",
    "signed_on",
    "start_on",
    "end_on",
    "committed_arr",
    "tcv",
]
CONTRACT_OPTIONAL = [
    "included_units",
    "included_meter",
    "base_fee",
    "credits",
    "deal_desk_estimate",
    "ae_estimate",
    "ramp_days",
    "amends",
]
PRICING_MODELS = {value: value for value in PricingModel.values}
OPTIONAL_MONEY = ["base_fee", "credits", "deal_desk_estimate", "ae_estimate"]
CONTRACT_FIELDS = [
    "account_id",
    "pricing_model",
    "signed_on",
    "start_on",
    "end_on",
    "committed_arr",
    "tcv",
    "included_units",
    "included_meter",
    "base_fee",
    "credits",
    "deal_desk_estimate",
    "ae_estimate",
    "ramp_days",
    "amends_id",
]
RAMP_DAYS_MAX = 3660
# What each pricing model needs besides the always-required columns.
NEEDS = {PricingModel.HYBRID: ["included_units", "base_fee"], PricingModel.CREDITS: ["credits"]}


@dataclass
class _ContractRow:
    row: Row
    account: str
    amends: str | None  # None: no amends column, the stored link stays; "" clears it
    values: dict[str, object] = field(default_factory=dict)


@all_or_nothing
def import_contracts(stream: BinaryIO) -> ImportReport:
    """Create or update the contracts in the file, or raise ``ImportRejected`` having written nothing."""
    _, rows, report = read_rows(stream, required=CONTRACT_REQUIRED, optional=CONTRACT_OPTIONAL)
    parsed: dict[str, _ContractRow] = {}
    for row in rows:
        external_id = row.text("external_id", required=True, max_length=EXTERNAL_ID_MAX)
        values: dict[str, object] = {
            "pricing_model": row.choice("pricing_model", PRICING_MODELS),
            "signed_on": row.date("signed_on", required=True),
            "start_on": row.date("start_on", required=True),
            "end_on": row.date("end_on", required=True),
            "committed_arr": row.decimal("committed_arr", required=True),
            "tcv": row.decimal("tcv", required=True),
        }
        if row.has("included_units"):
            values["included_units"] = row.decimal("included_units", places=QUANTITY_PLACES, digits=QUANTITY_DIGITS)
        if row.has("included_meter"):
            values["included_meter"] = row.text("included_meter", max_length=64)
        for name in OPTIONAL_MONEY:
            if row.has(name):
                values[name] = row.decimal(name)
        if row.has("ramp_days"):
            values["ramp_days"] = row.integer("ramp_days", default=90, minimum=0, maximum=RAMP_DAYS_MAX)
        start_on, end_on = values["start_on"], values["end_on"]
        if start_on and end_on and end_on < start_on:
            row.error("end_on", f"{end_on} is before start_on ({start_on})")
        contract = _ContractRow(
            row,
            account=row.text("account", required=True),
            amends=row.text("amends") if row.has("amends") else None,
            values=values,
        )
        if external_id in parsed:
            row.error("external_id", f"{external_id} appears twice (first on line {parsed[external_id].row.line})")
        elif external_id:
            parsed[external_id] = contract
            if contract.amends == external_id:
                row.error("amends", "a contract cannot amend itself")

    accounts = dict(
        Account.objects.filter(external_id__in={c.account for c in parsed.values()}).values_list("external_id", "id")
    )
    # Contracts name meters by key; the meter model lives in the usage app (built on this one).
    meter_keys = {c.values.get("included_meter") for c in parsed.values()} - {None, ""}
    known_meters = set(
        apps.get_model("usage", "Meter").objects.filter(key__in=meter_keys).values_list("key", flat=True)
    )
    referenced = set(parsed) | {c.amends for c in parsed.values() if c.amends}
    stored = {
        contract.pk: contract
        for contract in Contract.objects.filter(
            pk__in=_with_ancestors(Contract, key="external_id", parent="amends_id", keys=referenced)
        )
    }
    existing = {contract.external_id: contract for contract in stored.values()}
    amends_of: dict[str, str | None] = {
        contract.external_id: stored[contract.amends_id].external_id if contract.amends_id in stored else None
        for contract in stored.values()
    }
    for external_id, contract in parsed.items():
        row = contract.row
        if contract.account and contract.account not in accounts:
            row.error("account", f"unknown account '{contract.account}'")
        meter_key = contract.values.get("included_meter")
        if meter_key and meter_key not in known_meters:
            row.error("included_meter", f"unknown meter '{meter_key}'")
        if contract.amends is not None:
            if contract.amends and contract.amends not in parsed and contract.amends not in existing:
                row.error("amends", f"unknown contract '{contract.amends}' (not in this file or the database)")
                amends_of[external_id] = None
            else:
                amends_of[external_id] = contract.amends or None
        # Rules across columns, on the values the contract will have (stored ones for absent columns).
        stored_contract = existing.get(external_id)
        model = contract.values["pricing_model"]
        for name in NEEDS.get(model, []):
            value = contract.values[name] if name in contract.values else getattr(stored_contract, name, None)
            if value is None and not row.values.get(name):  # an invalid value was reported already
                absent = "" if row.has(name) else f" (the file has no {name} column)"
                row.error(name, f"is required for {model} contracts{absent}")
    for external_id, cycle in find_cycles(amends_of, list(parsed)).items():
        if len(cycle) > 2:
            parsed[external_id].row.error("amends", f"makes a cycle of amendments: {' → '.join(cycle)}")
    reject_if_any(report)

    created: list[Contract] = []
    changed: list[Contract] = []
    new_ids = iter(_allocate_ids(Contract, sum(1 for key in parsed if key not in existing)))
    for external_id in parsed:
        if external_id not in existing:
            existing[external_id] = Contract(pk=next(new_ids), external_id=external_id)
            created.append(existing[external_id])
    created_ids = {contract.pk for contract in created}
    for external_id, contract in parsed.items():
        stored_contract = existing[external_id]
        before = [getattr(stored_contract, name) for name in CONTRACT_FIELDS]
        for name, value in {**contract.values, "account_id": accounts[contract.account]}.items():
            setattr(stored_contract, name, value)
        if contract.amends is not None:
            stored_contract.amends_id = existing[contract.amends].pk if contract.amends else None
        if (
            stored_contract.pk not in created_ids
            and [getattr(stored_contract, name) for name in CONTRACT_FIELDS] != before
        ):
            changed.append(stored_contract)
    Contract.objects.bulk_create(created, batch_size=BATCH)
    _bulk_update(Contract, changed, CONTRACT_FIELDS)
    return _summary(report, rows=len(parsed), created=len(created), updated=len(changed))


# --- Owners --------------------------------------------------------------------------

OWNER_REQUIRED = ["account", "email", "role", "start_on"]
OWNER_OPTIONAL = ["end_on"]
OWNER_ROLES = {value: value for value in OwnerRole.values}
_MISSING = object()


@dataclass
class _Period:
    """An ownership period as it will be after the import: from the file (``line``) or stored."""

    account: str
    role: str
    start_on: dt.date
    end_on: dt.date | None
    email: str
    line: int | None = None

    def overlaps(self, other: _Period) -> bool:
        return (self.end_on is None or self.end_on >= other.start_on) and (
            other.end_on is None or other.end_on >= self.start_on
        )

    def describe(self) -> str:
        until = f"to {self.end_on}" if self.end_on else "onward (open)"
        where = f"line {self.line}" if self.line else "the stored period"
        return f"{where}: {self.email} as {self.role} of {self.account} from {self.start_on} {until}"


@all_or_nothing
def import_owners(stream: BinaryIO) -> ImportReport:
    """Create or update ownership periods, or raise ``ImportRejected`` having written nothing.

    Periods are keyed by (account, role, start_on); the file may change a period's
    person and end. Periods of one account and role must not overlap, in the file or
    with stored periods; every overlap is reported here, so the database's own
    overlap trigger never has the last word.
    """
    _, rows, report = read_rows(stream, required=OWNER_REQUIRED, optional=OWNER_OPTIONAL)
    parsed: dict[tuple[str, str, dt.date], tuple[Row, str, object]] = {}
    for row in rows:
        account = row.text("account", required=True)
        email = row.text("email", required=True).lower()
        role = row.choice("role", OWNER_ROLES)
        start_on = row.date("start_on", required=True)
        end_on = row.date("end_on") if row.has("end_on") else _MISSING
        if start_on and end_on not in (None, _MISSING) and end_on < start_on:
            row.error("end_on", f"{end_on} is before start_on ({start_on})")
        if not (account and role and start_on):
            continue
        key = (account, role, start_on)
        if key in parsed:
            row.error(
                "start_on", f"{account} {role} from {start_on} appears twice (first on line {parsed[key][0].line})"
            )
        else:
            parsed[key] = (row, email, end_on)

    # Lock the accounts first: writers of ownerships lock them too (see the trigger), so
    # the stored periods read next cannot change before this import commits.
    accounts = dict(
        Account.objects.select_for_update()
        .filter(external_id__in={account for account, _, _ in parsed})
        .order_by("pk")
        .values_list("external_id", "id")
    )
    people = dict(
        User.objects.annotate(email_ci=Lower("email"))
        .filter(email_ci__in={email for _, email, _ in parsed.values()})
        .values_list("email_ci", "id")
    )
    stored: dict[tuple[str, str, dt.date], Ownership] = {}
    external_id = {pk: external_id for external_id, pk in accounts.items()}
    for ownership in Ownership.objects.filter(account_id__in=accounts.values()).select_related("person"):
        stored[(external_id[ownership.account_id], ownership.role, ownership.start_on)] = ownership

    periods: dict[tuple[str, str], list[_Period]] = {}
    for key, ownership in stored.items():
        if key not in parsed:
            periods.setdefault(key[:2], []).append(_Period(*key, end_on=ownership.end_on, email=ownership.person.email))
    for key, (row, email, end_on) in parsed.items():
        if key[0] not in accounts:
            row.error("account", f"unknown account '{key[0]}'")
        if email and email not in people:
            row.error("email", f"{email} is not a person in the database (import people first)")
        if end_on is _MISSING:  # no end_on column: a stored period keeps its end
            end_on = stored[key].end_on if key in stored else None
        periods.setdefault(key[:2], []).append(_Period(*key, end_on=end_on, email=email, line=row.line))
    _report_overlaps(periods, parsed)
    reject_if_any(report)

    created: list[Ownership] = []
    shrunk: list[Ownership] = []
    grown: list[Ownership] = []
    for key, (_, email, end_on) in parsed.items():
        ownership = stored.get(key)
        if end_on is _MISSING:
            end_on = ownership.end_on if ownership else None
        if ownership is None:
            created.append(
                Ownership(
                    account_id=accounts[key[0]], role=key[1], start_on=key[2], end_on=end_on, person_id=people[email]
                )
            )
        elif ownership.person_id != people[email] or ownership.end_on != end_on:
            # Shortened periods are written before lengthened and new ones, so that no
            # intermediate state overlaps (the trigger checks each row as it is written).
            ends_earlier = end_on is not None and (ownership.end_on is None or end_on < ownership.end_on)
            ownership.person_id, ownership.end_on = people[email], end_on
            (shrunk if ends_earlier else grown).append(ownership)
    _bulk_update(Ownership, shrunk, ["person_id", "end_on"])
    _bulk_update(Ownership, grown, ["person_id", "end_on"])
    Ownership.objects.bulk_create(created, batch_size=BATCH)
    return _summary(report, rows=len(parsed), created=len(created), updated=len(shrunk) + len(grown))


def _report_overlaps(periods: dict[tuple[str, str], list[_Period]], parsed: dict) -> None:
    """Report each file row whose period overlaps another period of the same account and role."""
    for group in periods.values():
        group.sort(key=lambda period: period.start_on)
        reported: set[int] = set()
        reach: _Period | None = None  # the period so far that ends last
        for period in group:
            if reach is not None and reach.overlaps(period):
                # Blame the file row: its start falls inside the earlier period, or its end runs into this one.
                if period.line is not None and period.line not in reported:
                    row = parsed[(period.account, period.role, period.start_on)][0]
                    row.error("start_on", f"overlaps {reach.describe()}")
                    reported.add(period.line)
                elif period.line is None and reach.line is not None and reach.line not in reported:
                    row = parsed[(reach.account, reach.role, reach.start_on)][0]
                    row.error("end_on", f"overlaps {period.describe()}")
                    reported.add(reach.line)
            if reach is None or (reach.end_on is not None and (period.end_on is None or period.end_on > reach.end_on)):
                reach = period
