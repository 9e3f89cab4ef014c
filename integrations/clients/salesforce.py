"""Salesforce through ``simple-salesforce``: SOQL reads since ``SystemModstamp``, Composite writes.

Reads use ``queryAll`` so deleted and merged accounts (``IsDeleted``, ``MasterRecordId``)
arrive too. An expired session is refreshed with the OAuth refresh token when the
connection has one. ``REQUEST_LIMIT_EXCEEDED`` (403) and 429/503 answers are retried
with backoff (``clients.base.Retrier``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal

import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from integrations.clients.base import (
    CrmAccount,
    CrmBatch,
    CrmDeal,
    CrmError,
    CrmTeamRole,
    CrmUser,
    MappingError,
    PushResult,
    RateLimited,
    Retrier,
)

API_VERSION = "59.0"
COMPOSITE_MAX = 200
# How many account ids go into one "AccountId IN (…)" (a SOQL statement is at most 100,000 characters).
IN_CHUNK = 500
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
RATE_LIMIT_CODES = {"REQUEST_LIMIT_EXCEEDED", "API_CURRENTLY_DISABLED_TEMPORARILY"}

DEFAULT_MAPPING = {
    "account": {
        "name": "Name",
        "parent": "ParentId",
        "owner": "OwnerId",
        "segment": "Segment__c",
        "region": "BillingCountry",
        "industry": "Industry",
    },
    "segment_default": "",
    "segment_values": {"Mid-Market": "mid-market", "Commercial": "mid-market", "Small Business": "smb"},
    "team_roles": {"Account Manager": "expand_ae", "Customer Success Manager": "csm"},
    "deal": {
        "amount": "Amount",
        "close_date": "CloseDate",
        "term_months": "Term_Months__c",
        "ramp_days": "Ramp_Days__c",
    },
    "writeback": {
        "burn_rate": "Revops_Burn_Rate__c",
        "run_rate": "Revops_Run_Rate__c",
        "health": "Revops_Health__c",
        "band": "Revops_Band__c",
        "next_gate_on": "Revops_Next_Gate__c",
        "forecast_90d": "Revops_Forecast_90d__c",
    },
}


def record_url(base_url: str, crm_id: str) -> str:
    return f"{base_url.rstrip('/')}/lightning/r/Account/{crm_id}/view"


def soql_time(cursor: str) -> str:
    """``2025-01-01T00:00:05.000+0000`` (as Salesforce returns it) as a SOQL datetime literal."""
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.\d+)?(?:\+0000|Z)", cursor)
    if not match:
        raise CrmError(f"The stored cursor {cursor!r} is not a Salesforce timestamp; run a full sync.")
    return match.group(1) + "Z"


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class SalesforceConnector:
    def __init__(
        self,
        *,
        base_url: str,
        credentials: dict,
        mapping: dict,
        ca_file: str = "",
        retrier: Retrier | None = None,
        on_refresh: Callable[[dict], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.credentials = dict(credentials)
        self.mapping = mapping
        self.retrier = retrier or Retrier()
        self.on_refresh = on_refresh
        self.session = _PinnedSession(ca_file) if ca_file else requests.Session()
        self.timeout = 60
        self._connect()

    def _connect(self) -> None:
        token = self.credentials.get("access_token", "")
        if not token and self.credentials.get("refresh_token"):
            token = self._refresh()
        # Numbers as Decimal: amounts never pass through a float.
        self.sf = Salesforce(
            instance_url=self.base_url, session_id=token, session=self.session, version=API_VERSION, parse_float=Decimal
        )

    def _refresh(self) -> str:
        """The OAuth 2.0 refresh-token grant against the instance's token endpoint."""
        if not self.credentials.get("refresh_token"):
            raise CrmError("Salesforce refused the session (INVALID_SESSION_ID) and there is no refresh token.")
        try:
            response = self.session.post(
                f"{self.base_url}/services/oauth2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": self.credentials["refresh_token"],
                    "client_id": self.credentials.get("client_id", ""),
                    "client_secret": self.credentials.get("client_secret", ""),
                },
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise CrmError(f"Could not reach Salesforce to refresh the session: {exc}") from None
        if response.status_code != 200:
            raise CrmError(f"Salesforce refused the refresh token ({response.status_code}: {response.text[:200]}).")
        self.credentials["access_token"] = response.json()["access_token"]
        if self.on_refresh:
            self.on_refresh(self.credentials)
        return self.credentials["access_token"]

    # --- calls -------------------------------------------------------------------------

    def _call(self, fn: Callable, what: str):
        def attempt():
            try:
                return fn()
            except SalesforceExpiredSession:
                self._refresh()
                self._connect()
                return fn()
            except SalesforceError as exc:
                content = exc.content if isinstance(exc.content, list) else []
                codes = {item.get("errorCode") for item in content if isinstance(item, dict)}
                if codes & RATE_LIMIT_CODES or exc.status in (429, 503):
                    raise RateLimited(", ".join(sorted(c for c in codes if c)) or f"HTTP {exc.status}") from None
                message = "; ".join(
                    f"{i.get('errorCode')}: {' '.join(str(i.get('message', '')).split())}"
                    for i in content
                    if isinstance(i, dict)
                )
                if codes & {"INVALID_FIELD", "INVALID_TYPE"}:
                    raise MappingError(f"{what}: Salesforce says {message}") from None
                raise CrmError(f"{what}: Salesforce answered {exc.status}: {message or exc.content}") from None
            except requests.RequestException as exc:
                raise CrmError(
                    f"{what}: could not reach Salesforce at {self.base_url} ({exc.__class__.__name__})."
                ) from None

        return self.retrier.call(attempt, what)

    def query(self, soql: str, what: str) -> Iterator[dict]:
        """Every record of a query, page by page (``nextRecordsUrl``), deleted ones included."""
        page = self._call(lambda: self.sf.query(soql, include_deleted=True, timeout=self.timeout), what)
        while True:
            for record in page["records"]:
                record.pop("attributes", None)
                yield record
            if page.get("done", True):
                return
            locator = page["nextRecordsUrl"]
            page = self._call(
                lambda locator=locator: self.sf.query_more(locator, identifier_is_url=True, timeout=self.timeout), what
            )

    def describe_fields(self, object_name: str) -> set[str]:
        result = self._call(lambda: getattr(self.sf, object_name).describe(), f"describe {object_name}")
        return {f["name"] for f in result["fields"]}

    # --- reads -------------------------------------------------------------------------

    def _fields(self, section: str) -> dict[str, str]:
        fields = {k: v for k, v in self.mapping.get(section, {}).items() if v}
        for key, name in fields.items():
            if not FIELD_NAME.match(name):
                raise MappingError(f"The mapping {section}.{key} = {name!r} is not a Salesforce field name.")
        return fields

    def check_mapping(self) -> None:
        """Every mapped field exists on its object (describe), or a ``MappingError`` naming it."""
        for section, object_name in (("account", "Account"), ("deal", "Opportunity"), ("writeback", "Account")):
            known = self.describe_fields(object_name)
            for key, name in self._fields(section).items():
                if name not in known:
                    raise MappingError(
                        f"The mapping {section}.{key} names {object_name}.{name}, which this org does not have."
                    )

    def fetch(self, *, cursors: dict[str, str], full: bool) -> CrmBatch:
        batch = CrmBatch(cursors=dict(cursors), full_accounts=full or "Account" not in cursors)
        account_fields = self._fields("account")
        deal_fields = self._fields("deal")
        self.check_mapping()

        # SOQL (not SQL, and read-only): field names are checked against FIELD_NAME and the
        # org's describe, and values are quoted by _quote.
        def since(object_name: str) -> str:
            if full or object_name not in cursors:
                return ""
            return f" WHERE SystemModstamp >= {soql_time(cursors[object_name])}"

        def advance(object_name: str, modstamp: str) -> None:
            if modstamp and modstamp > batch.cursors.get(object_name, ""):
                batch.cursors[object_name] = modstamp

        for r in self.query(
            "SELECT Id, Email, Name, SystemModstamp FROM User" + since("User") + " ORDER BY SystemModstamp, Id",  # noqa: S608
            "read users",
        ):
            batch.users.append(CrmUser(crm_id=r["Id"], email=(r.get("Email") or "").strip(), name=r.get("Name") or ""))
            advance("User", r["SystemModstamp"])

        names = ["Id", "IsDeleted", "MasterRecordId", "SystemModstamp", *dict.fromkeys(account_fields.values())]
        soql = f"SELECT {', '.join(dict.fromkeys(names))} FROM Account{since('Account')} ORDER BY SystemModstamp, Id"  # noqa: S608
        for r in self.query(soql, "read accounts"):
            batch.accounts.append(
                CrmAccount(
                    crm_id=r["Id"],
                    name=_text(r, account_fields.get("name")),
                    parent_crm_id=_text(r, account_fields.get("parent")),
                    segment=_text(r, account_fields.get("segment")),
                    region=_text(r, account_fields.get("region")),
                    industry=_text(r, account_fields.get("industry")),
                    owner_crm_id=_text(r, account_fields.get("owner")),
                    modstamp=r["SystemModstamp"],
                    deleted=bool(r.get("IsDeleted")),
                    merged_into=r.get("MasterRecordId") or "",
                )
            )
            advance("Account", r["SystemModstamp"])

        if self.mapping.get("team_roles"):
            roles = ", ".join(_quote(role) for role in self.mapping["team_roles"])
            soql = (
                "SELECT Id, AccountId, UserId, TeamMemberRole, IsDeleted, SystemModstamp FROM AccountTeamMember"  # noqa: S608
                f"{since('AccountTeamMember') or ' WHERE Id != null'} AND TeamMemberRole IN ({roles})"
                " ORDER BY SystemModstamp, Id"
            )
            for r in self.query(soql, "read account teams"):
                batch.team.append(
                    CrmTeamRole(
                        account_crm_id=r["AccountId"],
                        user_crm_id=r["UserId"],
                        crm_role=r["TeamMemberRole"],
                        modstamp=r["SystemModstamp"],
                        deleted=bool(r.get("IsDeleted")),
                    )
                )
                advance("AccountTeamMember", r["SystemModstamp"])

        names = ["Id", "AccountId", "Name", "IsWon", "IsDeleted", "SystemModstamp", *deal_fields.values()]
        soql = (
            f"SELECT {', '.join(dict.fromkeys(names))} FROM Opportunity"  # noqa: S608
            f"{since('Opportunity') or ' WHERE Id != null'} AND IsWon = true ORDER BY SystemModstamp, Id"
        )
        for r in self.query(soql, "read closed-won opportunities"):
            batch.deals.append(
                CrmDeal(
                    crm_id=r["Id"],
                    account_crm_id=r.get("AccountId") or "",
                    name=r.get("Name") or "",
                    amount=_text(r, deal_fields.get("amount")),
                    close_date=_text(r, deal_fields.get("close_date")),
                    term_months=_text(r, deal_fields.get("term_months")),
                    ramp_days=_text(r, deal_fields.get("ramp_days")),
                    won=bool(r.get("IsWon")),
                    modstamp=r["SystemModstamp"],
                    deleted=bool(r.get("IsDeleted")),
                )
            )
            advance("Opportunity", r["SystemModstamp"])
        return batch

    # --- writes ------------------------------------------------------------------------

    def push(self, updates: dict[str, dict[str, object]]) -> list[PushResult]:
        """Write field values on accounts, 200 a Composite call (``allOrNone`` false: one
        refused record does not hold the others back)."""
        results: list[PushResult] = []
        items = list(updates.items())
        for start in range(0, len(items), COMPOSITE_MAX):
            chunk = items[start : start + COMPOSITE_MAX]
            body = {
                "allOrNone": False,
                "records": [
                    {"attributes": {"type": "Account"}, "id": crm_id, **{k: _json_number(v) for k, v in values.items()}}
                    for crm_id, values in chunk
                ],
            }
            answer = self._call(
                lambda body=body: self.sf.restful(
                    "composite/sobjects", method="PATCH", json=body, timeout=self.timeout
                ),
                "write back to accounts",
            )
            for (crm_id, _), result in zip(chunk, answer, strict=True):
                errors = "; ".join(f"{e.get('statusCode')}: {e.get('message')}" for e in result.get("errors") or [])
                results.append(PushResult(crm_id=crm_id, ok=bool(result.get("success")), error=errors))
        return results


def _json_number(value):
    """A Decimal as a JSON number: the values have at most 2 decimals and fewer than 15
    significant digits, which a double holds and prints exactly as written."""
    return float(value) if isinstance(value, Decimal) else value


class _PinnedSession(requests.Session):
    """A session that trusts one CA file even when REQUESTS_CA_BUNDLE is set: requests lets
    the environment's bundle win over ``Session.verify`` (psf/requests#3829)."""

    def __init__(self, ca_file: str) -> None:
        super().__init__()
        self.verify = ca_file

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self.verify
        return settings


def _text(record: dict, name: str | None) -> str:
    if not name:
        return ""
    value = record.get(name)
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return str(int(value)) if value == value.to_integral_value() else str(value)
    return str(value).strip()


Connector = SalesforceConnector
