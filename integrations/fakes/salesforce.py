"""A fake Salesforce org: the REST endpoints the connector uses, in their documented shapes.

- ``GET /services/data/vXX.X/query/?q=SOQL`` and ``/queryAll/`` (deleted and merged
  records too), 2,000 records a page with ``nextRecordsUrl`` / ``done``;
- ``GET /services/data/vXX.X/sobjects/<Object>/describe``;
- ``PATCH /services/data/vXX.X/composite/sobjects`` (at most 200 records, ``allOrNone``);
- ``POST /services/oauth2/token`` (refresh-token grant);
- errors as a JSON list of ``{"message", "errorCode"}``: ``INVALID_FIELD``,
  ``MALFORMED_QUERY``, ``INVALID_SESSION_ID`` (401), ``REQUEST_LIMIT_EXCEEDED`` (403),
  ``ENTITY_IS_DELETED``.

SOQL is the subset the connector sends: ``SELECT fields FROM Object [WHERE a AND b …]
[ORDER BY field[, field]]`` with comparisons ``= != > >= < <=`` on dates, datetimes,
booleans and quoted strings, and ``IN ('a', 'b')``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import secrets
from decimal import Decimal

from integrations.fakes.server import FakeApi, Reply

PAGE = 2000
COMPOSITE_MAX = 200
API_PATH = re.compile(r"^/services/data/v(\d+\.\d)/(.*)$")

# Each object's fields and their types (describe); custom fields can be added per org.
FIELDS: dict[str, dict[str, str]] = {
    "User": {
        "Id": "id",
        "Email": "email",
        "Name": "string",
        "IsActive": "boolean",
        "SystemModstamp": "datetime",
    },
    "Account": {
        "Id": "id",
        "Name": "string",
        "ParentId": "reference",
        "OwnerId": "reference",
        "Industry": "picklist",
        "BillingCountry": "string",
        "Type": "picklist",
        "Segment__c": "picklist",
        "IsDeleted": "boolean",
        "MasterRecordId": "reference",
        "SystemModstamp": "datetime",
        "Revops_Burn_Rate__c": "percent",
        "Revops_Run_Rate__c": "currency",
        "Revops_Health__c": "double",
        "Revops_Band__c": "string",
        "Revops_Next_Gate__c": "date",
        "Revops_Forecast_90d__c": "currency",
    },
    "AccountTeamMember": {
        "Id": "id",
        "AccountId": "reference",
        "UserId": "reference",
        "TeamMemberRole": "picklist",
        "IsDeleted": "boolean",
        "SystemModstamp": "datetime",
    },
    "Opportunity": {
        "Id": "id",
        "AccountId": "reference",
        "Name": "string",
        "Amount": "currency",
        "CloseDate": "date",
        "StageName": "picklist",
        "IsWon": "boolean",
        "IsClosed": "boolean",
        "Term_Months__c": "double",
        "Ramp_Days__c": "double",
        "IsDeleted": "boolean",
        "SystemModstamp": "datetime",
    },
}
PREFIX = {"User": "005", "Account": "001", "AccountTeamMember": "01M", "Opportunity": "006"}
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def sf_id(object_name: str, number: int) -> str:
    """An 18-character id with the object's key prefix."""
    return f"{PREFIX[object_name]}FK{number:013d}"


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, [{"message": message, "errorCode": code}])


class FakeSalesforce(FakeApi):
    """An org's records, keyed by object then Id; ``tick()`` moves its clock forward."""

    def __init__(self, *, access_token: str = "fake-session", refresh_token: str = "fake-refresh") -> None:  # noqa: S107
        super().__init__()
        self.records: dict[str, dict[str, dict]] = {name: {} for name in FIELDS}
        self.fields = {name: dict(fields) for name, fields in FIELDS.items()}
        self.tokens = {access_token}
        self.refresh_token = refresh_token
        self.clock = EPOCH
        self.numbers = itertools.count(1)
        self.cursors: dict[str, list[dict]] = {}
        self.rate_limited = 0  # the next N API calls answer REQUEST_LIMIT_EXCEEDED
        self.composite_calls = 0
        self.patched: list[dict] = []

    # --- the org's data ---------------------------------------------------------------

    def tick(self, seconds: int = 1) -> str:
        self.clock += dt.timedelta(seconds=seconds)
        return stamp(self.clock)

    def add(self, object_name: str, **values) -> dict:
        with self.lock:
            record_id = values.pop("Id", None) or sf_id(object_name, next(self.numbers))
            record = dict.fromkeys(self.fields[object_name])
            record.update(Id=record_id, IsDeleted=False, **values)
            if "IsDeleted" not in self.fields[object_name]:
                record.pop("IsDeleted")
            record["SystemModstamp"] = self.tick()
            self.records[object_name][record_id] = record
            return record

    def update(self, object_name: str, record_id: str, **values) -> dict:
        with self.lock:
            record = self.records[object_name][record_id]
            record.update(values)
            record["SystemModstamp"] = self.tick()
            return record

    def delete(self, object_name: str, record_id: str) -> None:
        self.update(object_name, record_id, IsDeleted=True)

    def merge(self, winner: str, loser: str) -> None:
        """Salesforce's merge: the loser is deleted with ``MasterRecordId``; its children move."""
        with self.lock:
            for child in self.records["Account"].values():
                if child["ParentId"] == loser:
                    self.update("Account", child["Id"], ParentId=winner)
            for name in ("AccountTeamMember", "Opportunity"):
                for row in self.records[name].values():
                    if row["AccountId"] == loser:
                        self.update(name, row["Id"], AccountId=winner)
            self.update("Account", loser, IsDeleted=True, MasterRecordId=winner)

    # --- HTTP ------------------------------------------------------------------------

    def handle(self, method, path, query, body, headers):
        if path == "/services/oauth2/token" and method == "POST":
            return self._token(body)
        match = API_PATH.match(path)
        if not match:
            raise _error(404, "NOT_FOUND", "The requested resource does not exist")
        auth = headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.tokens:
            raise _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
        with self.lock:
            if self.rate_limited:
                self.rate_limited -= 1
                raise _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        rest = match.group(2)
        if method == "GET" and rest in ("query/", "query", "queryAll/", "queryAll"):
            return 200, self._query(query.get("q", [""])[0], deleted=rest.startswith("queryAll"))
        if method == "GET" and rest.startswith(("query/", "queryAll/")):
            return 200, self._more(rest.split("/", 1)[1])
        describe = re.fullmatch(r"sobjects/(\w+)/describe/?", rest)
        if method == "GET" and describe:
            return 200, self._describe(describe.group(1))
        if method == "PATCH" and rest.rstrip("/") == "composite/sobjects":
            return 200, self._composite_update(body)
        raise _error(404, "NOT_FOUND", "The requested resource does not exist")

    def _token(self, body) -> tuple[int, dict]:
        form = {k: v[0] for k, v in _parse_form(body).items()}
        if form.get("grant_type") != "refresh_token" or form.get("refresh_token") != self.refresh_token:
            raise Reply(400, {"error": "invalid_grant", "error_description": "expired access/refresh token"})
        token = "fake-session-" + secrets.token_hex(8)
        with self.lock:
            self.tokens.add(token)
        return 200, {"access_token": token, "token_type": "Bearer", "issued_at": "0", "signature": "fake"}

    def _describe(self, object_name: str) -> dict:
        if object_name not in self.fields:
            raise _error(404, "NOT_FOUND", f"The requested resource does not exist: {object_name}")
        fields = [
            {"name": name, "type": kind, "updateable": name not in ("Id", "SystemModstamp", "IsDeleted")}
            for name, kind in self.fields[object_name].items()
        ]
        return {"name": object_name, "queryable": True, "fields": fields}

    def _query(self, soql: str, *, deleted: bool) -> dict:
        select, object_name, conditions, order = _parse_soql(soql)
        if object_name not in self.fields:
            raise _error(
                400,
                "INVALID_TYPE",
                f"\n{soql}\n^\nERROR at Row:1:Column:1\nsObject type '{object_name}' is not supported.",
            )
        known = self.fields[object_name]
        for name in [*select, *(c[0] for c in conditions), *order]:
            if name not in known:
                raise _error(
                    400,
                    "INVALID_FIELD",
                    f"\n{soql[:200]}\n^\nERROR at Row:1:Column:1\nNo such column '{name}' on entity '{object_name}'. "
                    "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name.",
                )
        with self.lock:
            rows = [dict(r) for r in self.records[object_name].values() if deleted or not r.get("IsDeleted")]
        rows = [r for r in rows if all(_holds(r, *condition, known) for condition in conditions)]
        if order:
            rows.sort(key=lambda r: tuple((r[name] is not None, r[name] or "") for name in order))
        records = [
            {"attributes": {"type": object_name, "url": f"/services/data/v59.0/sobjects/{object_name}/{r['Id']}"}}
            | {name: r.get(name) for name in select}
            for r in rows
        ]
        return self._page(records, total=len(records))

    def _page(self, records: list[dict], *, total: int) -> dict:
        first, rest = records[:PAGE], records[PAGE:]
        answer = {"totalSize": total, "done": not rest, "records": first}
        if rest:
            locator = f"01gFK{secrets.token_hex(6)}"
            with self.lock:
                self.cursors[locator] = rest
            answer["nextRecordsUrl"] = f"/services/data/v59.0/query/{locator}-{PAGE}"
        return answer

    def _more(self, identifier: str) -> dict:
        locator = identifier.split("-")[0]
        with self.lock:
            rest = self.cursors.pop(locator, None)
        if rest is None:
            raise _error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(rest, total=len(rest))

    def _composite_update(self, body) -> list[dict]:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise _error(400, "JSON_PARSER_ERROR", "The request body must be {allOrNone, records}")
        records = body["records"]
        if len(records) > COMPOSITE_MAX:
            raise _error(
                400, "EXCEEDED_ID_LIMIT", f"record limit reached. cannot submit more than {COMPOSITE_MAX} records"
            )
        with self.lock:
            self.composite_calls += 1
            results = []
            for record in records:
                object_name = (record.get("attributes") or {}).get("type", "")
                target = self.records.get(object_name, {}).get(record.get("id", ""))
                fields = {k: v for k, v in record.items() if k not in ("attributes", "id")}
                unknown = [name for name in fields if name not in self.fields.get(object_name, {})]
                if target is None:
                    errors = [{"statusCode": "INVALID_CROSS_REFERENCE_KEY", "message": "invalid cross reference id"}]
                elif target.get("IsDeleted"):
                    errors = [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]
                elif unknown:
                    errors = [
                        {
                            "statusCode": "INVALID_FIELD",
                            "message": f"No such column '{unknown[0]}' on sobject of type {object_name}",
                            "fields": unknown,
                        }
                    ]
                else:
                    errors = []
                results.append({"id": record.get("id"), "success": not errors, "errors": errors})
            if body.get("allOrNone") and any(not r["success"] for r in results):
                return [r | {"success": False} for r in results]
            for record, result in zip(records, results, strict=True):
                if result["success"]:
                    fields = {k: v for k, v in record.items() if k not in ("attributes", "id")}
                    self.patched.append({"id": record["id"], **fields})
                    target = self.records[record["attributes"]["type"]][record["id"]]
                    target.update(fields)
                    target["SystemModstamp"] = self.tick()
            return results


def _parse_form(body) -> dict[str, list[str]]:
    from urllib.parse import parse_qs

    text = body.decode() if isinstance(body, bytes | bytearray) else str(body or "")
    return parse_qs(text)


_SOQL = re.compile(
    r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+(?P<object>\w+)"
    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_CONDITION = re.compile(r"^(\w+)\s*(=|!=|>=|<=|>|<|\s+IN\s+)\s*(.+)$", re.IGNORECASE | re.DOTALL)


def _parse_soql(soql: str) -> tuple[list[str], str, list[tuple[str, str, object]], list[str]]:
    match = _SOQL.match(soql)
    if not match:
        raise _error(400, "MALFORMED_QUERY", f"unexpected token in: {soql[:120]}")
    select = [name.strip() for name in match.group("select").split(",")]
    conditions = []
    for part in re.split(r"\s+AND\s+", match.group("where") or "", flags=re.IGNORECASE):
        if not part.strip():
            continue
        condition = _CONDITION.match(part.strip())
        if not condition:
            raise _error(400, "MALFORMED_QUERY", f"unexpected condition: {part[:120]}")
        name, operator, literal = condition.group(1), condition.group(2).strip().upper(), condition.group(3).strip()
        if operator == "IN":
            values = re.findall(r"'((?:[^'\\]|\\.)*)'", literal)
            conditions.append((name, "IN", set(values)))
        else:
            conditions.append((name, operator, _literal(literal)))
    order = [name.strip().split()[0] for name in (match.group("order") or "").split(",") if name.strip()]
    return select, match.group("object"), conditions, order


def _literal(text: str):
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1].replace("\\'", "'")
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if text.lower() == "null":
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})", text):
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return dt.date.fromisoformat(text)
    if re.fullmatch(r"-?\d+(\.\d+)?", text):
        return Decimal(text)
    raise _error(400, "MALFORMED_QUERY", f"unexpected literal: {text[:60]}")


def _comparable(value, kind: str):
    if value is None:
        return None
    if kind == "datetime":
        return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.000+0000").replace(tzinfo=dt.UTC)
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind in ("currency", "double", "percent"):
        return Decimal(str(value))
    return value


def _holds(record: dict, name: str, operator: str, literal, known: dict[str, str]) -> bool:
    value = _comparable(record.get(name), known[name])
    if operator == "IN":
        return value in literal
    if operator == "=":
        return value == literal
    if operator == "!=":
        return value != literal
    if value is None or literal is None:
        return False
    return {">": value > literal, ">=": value >= literal, "<": value < literal, "<=": value <= literal}[operator]
