"""Apply what a connector read to accounts, owners and contracts, through the CSV imports.

The records become rows of the accounts, owners and contracts files and go through
``accounts.imports`` — the same checks, natural-key upserts and all-or-nothing writes as
an uploaded file. A record the import refuses is logged as rejected with the import's
reason and left out (with the records that need it, e.g. a child of a refused parent),
and the rest is imported again; a run whose every account is refused is a bad mapping
and writes nothing at all. Everything is applied in one transaction (a dry run rolls it
back and keeps only the log).

Ownership is effective-dated: an owner or team-role change starts a new ownership on the
day the run saw it (the previous one ends the day before), so comp credit follows it on
the day.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.apps import apps
from django.db.models import Q
from django.db.models.functions import Lower

from accounts.imports import import_accounts, import_contracts, import_owners
from accounts.models import Account, Contract, OwnerRole, Ownership, PricingModel
from integrations.clients.base import CrmAccount, CrmBatch, CrmDeal, MappingError
from integrations.models import Connection, ExternalRecord, Outcome, Provider
from revops.models import User
from revops.tabular import ImportRejected

MAX_PASSES = 12
SYNC_SOURCE = "crm-sync"
CENT = Decimal("0.01")
DEFAULT_TERM_MONTHS = 12
DEFAULT_RAMP_DAYS = 90


def account_events():
    return apps.get_model("accounts", "AccountEvent").objects


def audit_watermark() -> int:
    return account_events().order_by("-pgh_id").values_list("pgh_id", flat=True).first() or 0


def account_external_id(connection: Connection, crm_id: str) -> str:
    """Salesforce ids are unique across orgs and objects; HubSpot's are numbers, so prefixed."""
    return f"hs-{crm_id}" if connection.provider == Provider.HUBSPOT else crm_id


def deal_external_id(connection: Connection, crm_id: str) -> str:
    return f"hs-deal-{crm_id}" if connection.provider == Provider.HUBSPOT else crm_id


@dataclass
class Entry:
    object_type: str
    record_id: str
    outcome: str
    reason: str = ""
    changes: dict = field(default_factory=dict)


@dataclass
class Applied:
    entries: list[Entry] = field(default_factory=list)
    counts: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    records: list[ExternalRecord] = field(default_factory=list)

    def log(self, object_type: str, record_id: str, outcome: str, reason: str = "", changes: dict | None = None):
        self.counts[object_type][outcome] += 1
        self.entries.append(Entry(object_type, record_id, outcome, reason, changes or {}))

    def count(self, object_type: str, outcome: str, n: int = 1) -> None:
        self.counts[object_type][outcome] += n


def _csv(columns: list[str], rows: list[dict]) -> io.BytesIO:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([row.get(column, "") for column in columns])
    return io.BytesIO(text.getvalue().encode())


def _import_dropping_refused(importer, columns: list[str], rows: list[dict], key: str, on_refused) -> None:
    """Import ``rows``; rows the import refuses go to ``on_refused(row, reason)`` and the
    rest is imported again, until it goes through (at most ``MAX_PASSES`` times)."""
    for _ in range(MAX_PASSES):
        if not rows:
            return
        try:
            importer(_csv(columns, rows))
            return
        except ImportRejected as rejected:
            by_line: dict[int, list[str]] = defaultdict(list)
            for error in rejected.report.errors:
                by_line[error["line"]].append(
                    f"{error['column']}: {error['reason']}" if error["column"] else error["reason"]
                )
            if 0 in by_line or 1 in by_line:  # the file as a whole (never the rows): give up
                raise MappingError(
                    f"The CRM's records could not be imported: {'; '.join(by_line.get(0) or by_line[1])}"
                ) from None
            refused = {line - 2 for line in by_line}  # line 1 is the header
            for index in sorted(refused):
                on_refused(rows[index], "; ".join(by_line[index + 2]))
            rows = [row for i, row in enumerate(rows) if i not in refused]
    raise MappingError(f"The {key} records kept being refused after {MAX_PASSES} passes; see the run log.")


class Sync:
    def __init__(self, *, connection: Connection, today: dt.date, now: dt.datetime) -> None:
        self.connection = connection
        self.mapping = connection.mapping
        self.today = today
        self.now = now
        self.applied = Applied()
        self.touched: set[tuple[str, str]] = set()  # records of this batch: only they are saved
        self.stored = {(r.object_type, r.crm_id): r for r in ExternalRecord.objects.filter(connection=connection)}
        self.loaded = {key: _state(r) for key, r in self.stored.items()}

    def _record(self, object_type: str, crm_id: str) -> ExternalRecord:
        self.touched.add((object_type, crm_id))
        record = self.stored.get((object_type, crm_id))
        if record is None:
            record = ExternalRecord(connection=self.connection, object_type=object_type, crm_id=crm_id)
            self.stored[(object_type, crm_id)] = record
        return record

    # --- people ------------------------------------------------------------------------

    def people(self, batch: CrmBatch) -> dict[str, int]:
        """CRM user id → person id, matched by email (case-insensitive); people are never created here."""
        emails = {u.email.lower() for u in batch.users if u.email}
        by_email = dict(User.objects.annotate(e=Lower("email")).filter(e__in=emails).values_list("e", "id"))
        for user in batch.users:
            record = self._record("user", user.crm_id)
            record.local_id = by_email.get(user.email.lower()) if user.email else None
            record.merged_into = user.email.lower()[:100]  # the email, to name an unmatched owner
            record.synced_at = self.now
            self.applied.count("user", "read")
            self.applied.count("user", "matched" if record.local_id else "unmatched")
        return {crm_id: r.local_id for (kind, crm_id), r in self.stored.items() if kind == "user" and r.local_id}

    def _user_email(self, crm_id: str) -> str:
        record = self.stored.get(("user", crm_id))
        return record.merged_into if record else ""

    # --- accounts ----------------------------------------------------------------------

    def accounts(self, batch: CrmBatch) -> set[str]:
        """Apply the accounts; the external ids that are now in revops from this batch."""
        mapping = self.mapping
        values_map = {k.lower(): v for k, v in (mapping.get("segment_values") or {}).items()}
        default_segment = mapping.get("segment_default") or ""
        mapped = mapping.get("account", {})
        columns = ["external_id", "name", "segment", "parent_external_id"]
        columns += [name for name in ("region", "industry") if mapped.get(name)]
        latest: dict[str, CrmAccount] = {}
        for account in batch.accounts:
            latest[account.crm_id] = account  # ordered by modstamp: the last one wins
        rows, by_external = [], {}
        for account in latest.values():
            self.applied.count("account", "read")
            record = self._record("account", account.crm_id)
            if account.deleted:
                self._deleted_account(account, record)
                continue
            record.deleted_at, record.merged_into = None, ""
            segment = account.segment.strip()
            segment = values_map.get(segment.lower(), segment) or default_segment
            external_id = account_external_id(self.connection, account.crm_id)
            row = {
                "external_id": external_id,
                "name": account.name,
                "segment": segment,
                "parent_external_id": account_external_id(self.connection, account.parent_crm_id)
                if account.parent_crm_id
                else "",
                "region": account.region,
                "industry": account.industry,
                "_crm": account,
            }
            rows.append(row)
            by_external[external_id] = row

        existing = {
            a.external_id: a
            for a in Account.objects.filter(external_id__in=by_external)
            .select_related("parent")
            .only("id", "external_id", "name", "segment", "region", "industry", "parent__external_id")
        }
        # Unchanged in the CRM since the last sync: revops' own edits stay (the CRM did not edit it).
        unchanged = []
        for row in rows:
            record = self._record("account", row["_crm"].crm_id)
            if row["external_id"] in existing and record.modstamp and record.modstamp == row["_crm"].modstamp:
                unchanged.append(row)
        for row in unchanged:
            rows.remove(row)
            self.applied.count("account", "unchanged")
        refused: set[str] = set()

        def on_refused(row: dict, reason: str) -> None:
            refused.add(row["external_id"])
            self.applied.log("account", row["_crm"].crm_id, Outcome.REJECTED, reason)

        _import_dropping_refused(import_accounts, columns, rows, "account", on_refused)
        accepted = [row for row in rows if row["external_id"] not in refused]
        if rows and not accepted:
            example = next(e for e in self.applied.entries if e.outcome == Outcome.REJECTED)
            raise MappingError(
                f"Every one of the {len(rows)} accounts read was refused, so nothing was written: check the "
                f"mapping. The first: {example.record_id}: {example.reason}"
            )
        edited = self._edited_in_revops(
            [existing[r["external_id"]].pk for r in accepted if r["external_id"] in existing]
        )
        ids = dict(
            Account.objects.filter(external_id__in=[r["external_id"] for r in accepted]).values_list(
                "external_id", "id"
            )
        )
        for row in accepted:
            crm = row["_crm"]
            before = existing.get(row["external_id"])
            record = self._record("account", crm.crm_id)
            record.local_id, record.modstamp, record.synced_at = ids[row["external_id"]], crm.modstamp, self.now
            if before is None:
                self.applied.log("account", crm.crm_id, Outcome.CREATED, changes=_public(row, columns))
                continue
            changes = _account_changes(before, row, columns)
            revops_edit = edited.get(before.pk)
            if revops_edit and changes:
                self.applied.log(
                    "account",
                    crm.crm_id,
                    Outcome.CONFLICT,
                    f"edited in revops ({revops_edit}) and in the CRM since the last sync; the CRM owns accounts, "
                    "so its values were kept",
                    changes,
                )
                self.applied.count("account", "updated")
            elif changes:
                self.applied.log("account", crm.crm_id, Outcome.UPDATED, changes=changes)
            else:
                self.applied.count("account", "unchanged")
        return {row["external_id"] for row in accepted} | {row["external_id"] for row in unchanged}

    def _deleted_account(self, account: CrmAccount, record: ExternalRecord) -> None:
        if record.deleted_at is not None:
            self.applied.count("account", "unchanged")
            return
        record.deleted_at, record.modstamp = self.now, account.modstamp
        kept = "the revops account is kept (its usage and comp history stay) and no longer synced or written back"
        if account.merged_into:
            record.merged_into = account.merged_into
            winner = account_external_id(self.connection, account.merged_into)
            self.applied.log("account", account.crm_id, Outcome.MERGED, f"merged into {winner} in the CRM; {kept}")
        else:
            self.applied.log("account", account.crm_id, Outcome.DELETED, f"deleted in the CRM; {kept}")

    def _edited_in_revops(self, account_ids: list[int]) -> dict[int, str]:
        """Accounts changed in revops (not by a sync) since the last read was applied: audit
        events after the connection's watermark (ids, not times: a transaction's events
        all carry its start time)."""
        if not account_ids or not self.connection.audit_watermark:
            return {}
        events = (
            account_events()
            .filter(pgh_obj_id__in=account_ids, pgh_id__gt=self.connection.audit_watermark, pgh_label="update")
            # Not a sync's own change (an event outside any context is someone's too).
            .filter(Q(pgh_context__isnull=True) | ~Q(pgh_context__metadata__contains={"source": SYNC_SOURCE}))
            .values_list("pgh_obj_id", "pgh_created_at")
        )
        return {pk: f"{at:%Y-%m-%d %H:%M} UTC" for pk, at in events}

    # --- owners ------------------------------------------------------------------------

    def owners(self, batch: CrmBatch, people: dict[str, int], present: set[str]) -> None:
        team_roles = self.mapping.get("team_roles") or {}
        wanted: dict[tuple[str, str], tuple[str, str | None]] = {}  # (account, role) → (crm user, person)
        ended: set[tuple[str, str, str]] = set()
        owner_mapped = bool(self.mapping.get("account", {}).get("owner"))
        for account in batch.accounts:
            external_id = account_external_id(self.connection, account.crm_id)
            if account.deleted or external_id not in present or not owner_mapped:
                continue
            if account.owner_crm_id:
                wanted[(external_id, OwnerRole.LAND_AE)] = (account.owner_crm_id, people.get(account.owner_crm_id))
        for member in batch.team:
            role = team_roles.get(member.crm_role)
            external_id = account_external_id(self.connection, member.account_crm_id)
            if role not in OwnerRole.values or external_id not in present:
                continue
            if member.deleted:
                wanted.pop((external_id, role), None)
                ended.add((external_id, role, member.user_crm_id))
            else:
                wanted[(external_id, role)] = (member.user_crm_id, people.get(member.user_crm_id))
        self.applied.count("owner", "read", len(wanted) + len(ended))
        accounts = {k[0] for k in wanted} | {k[0] for k in ended}
        current: dict[tuple[str, str], Ownership] = {}
        first_contract: dict[str, dt.date] = {}
        for ownership in Ownership.objects.filter(
            account__external_id__in=accounts, end_on__isnull=True
        ).select_related("account", "person"):
            current[(ownership.account.external_id, ownership.role)] = ownership
        history = set(
            Ownership.objects.filter(account__external_id__in=accounts).values_list("account__external_id", "role")
        )
        for external_id, start_on in Contract.objects.filter(account__external_id__in=accounts).values_list(
            "account__external_id", "start_on"
        ):
            first_contract[external_id] = min(start_on, first_contract.get(external_id, start_on))
        emails = dict(User.objects.filter(pk__in={p for _, p in wanted.values() if p}).values_list("pk", "email"))
        rows: list[dict] = []
        yesterday = self.today - dt.timedelta(days=1)

        def end(ownership: Ownership) -> None:
            if ownership.start_on <= yesterday:
                rows.append(
                    {
                        "account": ownership.account.external_id,
                        "email": ownership.person.email,
                        "role": ownership.role,
                        "start_on": ownership.start_on.isoformat(),
                        "end_on": yesterday.isoformat(),
                        "_id": f"{ownership.account.external_id}/{ownership.role}",
                    }
                )

        for (external_id, role), (crm_user, person) in sorted(wanted.items()):
            record_id = f"{external_id}/{role}"
            if person is None:
                email = self._user_email(crm_user)
                who = f"{email} ({crm_user})" if email else crm_user
                self.applied.log(
                    "owner", record_id, Outcome.REJECTED, f"owner {who} is not a person in revops (import people first)"
                )
                continue
            now = current.get((external_id, role))
            if now is not None and now.person_id == person:
                self.applied.count("owner", "unchanged")
                continue
            if now is not None and now.start_on > yesterday:
                start_on = now.start_on  # changed again on the day it started: replace the person
            else:
                if now is not None:
                    end(now)
                # A first owner owns from the account's first contract (comp needs the land deal's owner).
                fresh = (external_id, role) not in history
                start_on = min(first_contract.get(external_id, self.today), self.today) if fresh else self.today
            rows.append(
                {
                    "account": external_id,
                    "email": emails[person],
                    "role": role,
                    "start_on": start_on.isoformat(),
                    "end_on": "",
                    "_id": record_id,
                }
            )
            before = now.person.email if now is not None else ""
            outcome = Outcome.UPDATED if now is not None else Outcome.CREATED
            self.applied.log(
                "owner", record_id, outcome, changes={"person": [before, emails[person]], "from": start_on.isoformat()}
            )
        for external_id, role, crm_user in sorted(ended):
            now = current.get((external_id, role))
            if now is not None and now.person_id == people.get(crm_user):
                end(now)
                self.applied.log(
                    "owner",
                    f"{external_id}/{role}",
                    Outcome.UPDATED,
                    "removed from the account team in the CRM",
                    {"ends_on": yesterday.isoformat()},
                )

        def on_refused(row: dict, reason: str) -> None:
            self.applied.log("owner", row["_id"], Outcome.REJECTED, reason)

        _import_dropping_refused(
            import_owners, ["account", "email", "role", "start_on", "end_on"], rows, "owner", on_refused
        )

    # --- contracts ---------------------------------------------------------------------

    def contracts(self, batch: CrmBatch, present: set[str]) -> None:
        pricing = self.mapping.get("deal_pricing_model") or PricingModel.COMMIT
        latest: dict[str, CrmDeal] = {}
        for deal in batch.deals:
            latest[deal.crm_id] = deal
        rows = []
        known_accounts = present | set(
            Account.objects.filter(
                external_id__in={account_external_id(self.connection, d.account_crm_id) for d in latest.values()}
            ).values_list("external_id", flat=True)
        )
        for deal in latest.values():
            self.applied.count("contract", "read")
            record = self._record("contract", deal.crm_id)
            if deal.deleted:
                if record.deleted_at is None and record.local_id:
                    record.deleted_at = self.now
                    self.applied.log(
                        "contract",
                        deal.crm_id,
                        Outcome.DELETED,
                        "deleted in the CRM; the contract is kept (commissions may have been computed on it)",
                    )
                else:
                    self.applied.count("contract", "unchanged")
                continue
            account = account_external_id(self.connection, deal.account_crm_id)
            if not deal.account_crm_id or account not in known_accounts:
                self.applied.log(
                    "contract",
                    deal.crm_id,
                    Outcome.REJECTED,
                    f"account: {deal.account_crm_id or '(none)'} is not an account in revops (refused, deleted or not synced)",
                )
                continue
            row = self._contract_row(deal, account, pricing)
            if isinstance(row, str):
                self.applied.log("contract", deal.crm_id, Outcome.REJECTED, row)
                continue
            rows.append(row)
        columns = [
            "external_id",
            "account",
            "pricing_model",
            "signed_on",
            "start_on",
            "end_on",
            "committed_arr",
            "tcv",
            "ramp_days",
        ]
        existing = {
            c.external_id: c
            for c in Contract.objects.filter(external_id__in=[r["external_id"] for r in rows]).select_related("account")
        }
        refused: set[str] = set()

        def on_refused(row: dict, reason: str) -> None:
            refused.add(row["external_id"])
            self.applied.log("contract", row["_crm"].crm_id, Outcome.REJECTED, reason)

        _import_dropping_refused(import_contracts, columns, rows, "contract", on_refused)
        accepted = [r for r in rows if r["external_id"] not in refused]
        ids = dict(
            Contract.objects.filter(external_id__in=[r["external_id"] for r in accepted]).values_list(
                "external_id", "id"
            )
        )
        for row in accepted:
            crm = row["_crm"]
            record = self._record("contract", crm.crm_id)
            record.local_id, record.modstamp, record.synced_at, record.deleted_at = (
                ids[row["external_id"]],
                crm.modstamp,
                self.now,
                None,
            )
            before = existing.get(row["external_id"])
            if before is None:
                self.applied.log("contract", crm.crm_id, Outcome.CREATED, changes=_public(row, columns))
                continue
            changes = _contract_changes(before, row)
            if changes:
                self.applied.log("contract", crm.crm_id, Outcome.UPDATED, changes=changes)
            else:
                self.applied.count("contract", "unchanged")

    def _contract_row(self, deal: CrmDeal, account: str, pricing: str) -> dict | str:
        """The contracts-file row of a closed-won deal, or why it cannot be one."""
        try:
            close = dt.date.fromisoformat(deal.close_date[:10])
        except ValueError:
            return f"close_date: '{deal.close_date[:40]}' is not a date"
        term = _whole(deal.term_months, DEFAULT_TERM_MONTHS)
        ramp = _whole(deal.ramp_days, DEFAULT_RAMP_DAYS)
        if term is None or not 1 <= term <= 120:
            return f"term_months: '{deal.term_months[:40]}' is not a whole number of months from 1 to 120"
        if ramp is None:
            return f"ramp_days: '{deal.ramp_days[:40]}' is not a whole number of days"
        try:
            amount = Decimal(deal.amount or "0")
        except InvalidOperation:
            return f"amount: '{deal.amount[:40]}' is not a number"
        if not amount.is_finite():
            return f"amount: '{deal.amount[:40]}' is not a number"
        end = add_months(close, term) - dt.timedelta(days=1)
        # Committed ARR is the deal's annual amount; the TCV is it over the whole term.
        tcv = (amount * term / 12).quantize(CENT, rounding=ROUND_HALF_UP)
        return {
            "external_id": deal_external_id(self.connection, deal.crm_id),
            "account": account,
            "pricing_model": pricing,
            "signed_on": close.isoformat(),
            "start_on": close.isoformat(),
            "end_on": end.isoformat(),
            "committed_arr": str(amount),
            "tcv": str(tcv),
            "ramp_days": str(ramp),
            "_crm": deal,
        }

    def save_records(self) -> None:
        records = [self.stored[key] for key in self.touched]
        new = [r for r in records if r.pk is None]
        old = [r for r in records if r.pk is not None and _state(r) != self.loaded.get((r.object_type, r.crm_id))]
        ExternalRecord.objects.bulk_create(new, batch_size=2000)
        ExternalRecord.objects.bulk_update(
            old, ["local_id", "modstamp", "synced_at", "deleted_at", "merged_into"], batch_size=2000
        )


def _state(record: ExternalRecord) -> tuple:
    return (record.local_id, record.modstamp, record.synced_at, record.deleted_at, record.merged_into)


def _whole(text: str, default: int) -> int | None:
    if not text:
        return default
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value != value.to_integral_value() or value < 0:
        return None
    return int(value)


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    last = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(day.day, last))


def _public(row: dict, columns: list[str]) -> dict:
    return {column: row[column] for column in columns if row.get(column) not in ("", None)}


def _account_changes(before: Account, row: dict, columns: list[str]) -> dict:
    now = {
        "name": before.name,
        "segment": before.segment,
        "region": before.region,
        "industry": before.industry,
        "parent_external_id": before.parent.external_id if before.parent_id else "",
    }
    changes = {}
    for column in columns[1:]:
        new = row[column]
        if column == "segment":
            new = new.lower().replace(" ", "-").replace("_", "-")
            new = {"midmarket": "mid-market"}.get(new, new)
        if now[column] != new:
            changes[column] = [now[column], row[column]]
    return changes


def _contract_changes(before: Contract, row: dict) -> dict:
    now = {
        "account": before.account.external_id,
        "pricing_model": before.pricing_model,
        "signed_on": before.signed_on.isoformat(),
        "start_on": before.start_on.isoformat(),
        "end_on": before.end_on.isoformat(),
        "committed_arr": before.committed_arr,
        "tcv": before.tcv,
        "ramp_days": str(before.ramp_days),
    }
    changes = {}
    for name, old in now.items():
        new = row[name]
        same = Decimal(new) == old if isinstance(old, Decimal) else old == new
        if not same:
            changes[name] = [str(old), new]
    return changes
