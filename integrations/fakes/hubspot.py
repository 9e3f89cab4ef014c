"""A fake HubSpot portal: the CRM v3 endpoints the connector uses, in their documented shapes.

- ``GET /crm/v3/owners/`` and ``GET /crm/v3/objects/{companies,deals}`` with ``limit``,
  ``after`` (``paging.next.after``), ``properties``, ``associations``, ``archived``;
- ``POST /crm/v3/objects/{companies,deals}/search``: ``filterGroups`` (``GTE``/``EQ``/…),
  ``sorts``, ``after``; ``total``; at most 10,000 results reachable, as the real API;
- ``POST /crm/v3/associations/deals/companies/batch/read``;
- ``GET /crm/v3/properties/{objectType}``;
- ``POST /crm/v3/objects/companies/batch/update`` (100 inputs; 207 with ``errors`` for
  unknown ids);
- 401 for an unknown token and 429 with ``Retry-After`` while rate-limited.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re

from integrations.fakes.server import FakeApi, Reply

PAGE_MAX = 100
SEARCH_REACH = 10_000
EPOCH = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
PROPERTIES = {
    "companies": [
        "name",
        "domain",
        "country",
        "industry",
        "hubspot_owner_id",
        "hs_parent_company_id",
        "hs_lastmodifieddate",
        "hs_object_id",
        "hs_merged_object_ids",
        "revops_segment",
        "revops_csm_owner_id",
        "revops_expand_owner_id",
        "revops_burn_rate",
        "revops_run_rate",
        "revops_health",
        "revops_band",
        "revops_next_gate",
        "revops_forecast_90d",
    ],
    "deals": [
        "dealname",
        "amount",
        "closedate",
        "dealstage",
        "pipeline",
        "hs_lastmodifieddate",
        "hs_object_id",
        "revops_term_months",
        "revops_ramp_days",
    ],
}


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class FakeHubSpot(FakeApi):
    def __init__(self, *, token: str = "pat-fake") -> None:  # noqa: S107
        super().__init__()
        self.token = token
        self.clock = EPOCH
        self.numbers = itertools.count(1001)
        self.owners: dict[str, dict] = {}
        self.objects: dict[str, dict[str, dict]] = {"companies": {}, "deals": {}}
        self.deal_company: dict[str, str] = {}
        self.properties = {name: list(values) for name, values in PROPERTIES.items()}
        self.rate_limited = 0
        self.retry_after = "1"
        self.batch_calls = 0
        self.updated: list[dict] = []

    # --- the portal's data ------------------------------------------------------------

    def tick(self) -> str:
        self.clock += dt.timedelta(seconds=1)
        return iso(self.clock)

    def add_owner(self, email: str, first: str = "", last: str = "") -> str:
        owner_id = str(next(self.numbers))
        self.owners[owner_id] = {
            "id": owner_id,
            "email": email,
            "firstName": first,
            "lastName": last,
            "userId": int(owner_id),
            "type": "PERSON",
            "createdAt": iso(EPOCH),
            "updatedAt": iso(EPOCH),
            "archived": False,
        }
        return owner_id

    def add(self, object_type: str, company: str | None = None, **properties) -> str:
        with self.lock:
            record_id = str(next(self.numbers))
            stamp = self.tick()
            self.objects[object_type][record_id] = {
                "id": record_id,
                "properties": {
                    "hs_object_id": record_id,
                    "hs_lastmodifieddate": stamp,
                    **{k: _text(v) for k, v in properties.items()},
                },
                "createdAt": stamp,
                "updatedAt": stamp,
                "archived": False,
            }
            if company:
                self.deal_company[record_id] = company
            return record_id

    def update(self, object_type: str, record_id: str, **properties) -> None:
        with self.lock:
            record = self.objects[object_type][record_id]
            stamp = self.tick()
            record["properties"].update({k: _text(v) for k, v in properties.items()}, hs_lastmodifieddate=stamp)
            record["updatedAt"] = stamp

    def archive(self, object_type: str, record_id: str) -> None:
        with self.lock:
            record = self.objects[object_type][record_id]
            record["archived"], record["archivedAt"] = True, self.tick()

    def merge(self, winner: str, loser: str) -> None:
        """HubSpot's merge: the loser is archived; the winner lists it in hs_merged_object_ids."""
        with self.lock:
            merged = self.objects["companies"][winner]["properties"].get("hs_merged_object_ids") or ""
            self.update("companies", winner, hs_merged_object_ids=";".join(filter(None, [merged, loser])))
            for deal, company in list(self.deal_company.items()):
                if company == loser:
                    self.deal_company[deal] = winner
                    self.update("deals", deal)
            self.archive("companies", loser)

    # --- HTTP ------------------------------------------------------------------------

    def handle(self, method, path, query, body, headers):
        if headers.get("Authorization", "") != f"Bearer {self.token}":
            raise Reply(
                401,
                {
                    "status": "error",
                    "message": "Authentication credentials not found.",
                    "category": "INVALID_AUTHENTICATION",
                    "correlationId": "fake",
                },
            )
        with self.lock:
            if self.rate_limited:
                self.rate_limited -= 1
                raise Reply(
                    429,
                    {
                        "status": "error",
                        "message": "You have reached your secondly limit.",
                        "errorType": "RATE_LIMIT",
                        "correlationId": "fake",
                        "policyName": "SECONDLY",
                    },
                    {"Retry-After": self.retry_after},
                )
        path = path.rstrip("/")
        if method == "GET" and path == "/crm/v3/owners":
            return 200, self._page(list(self.owners.values()), query)
        match = re.fullmatch(r"/crm/v3/properties/(\w+)", path)
        if method == "GET" and match:
            return 200, {"results": [_property(name) for name in self.properties.get(match.group(1), [])]}
        match = re.fullmatch(r"/crm/v3/objects/(companies|deals)", path)
        if method == "GET" and match:
            return 200, self._list(match.group(1), query)
        match = re.fullmatch(r"/crm/v3/objects/(companies|deals)/search", path)
        if method == "POST" and match:
            return 200, self._search(match.group(1), body or {})
        if method == "POST" and path == "/crm/v3/associations/deals/companies/batch/read":
            return self._associations(body or {})
        if method == "POST" and path == "/crm/v3/objects/companies/batch/update":
            return self._batch_update(body or {})
        raise Reply(
            404,
            {
                "status": "error",
                "message": f"No route for {method} {path}",
                "category": "OBJECT_NOT_FOUND",
                "correlationId": "fake",
            },
        )

    def _page(self, rows: list[dict], query: dict, *, limit: int | None = None) -> dict:
        limit = min(int((query.get("limit") or ["10"])[0]) if limit is None else limit, PAGE_MAX)
        start = int((query.get("after") or ["0"])[0] or 0)
        page = {"results": rows[start : start + limit]}
        if start + limit < len(rows):
            page["paging"] = {"next": {"after": str(start + limit), "link": f"?after={start + limit}"}}
        return page

    def _shape(self, object_type: str, record: dict, properties: list[str], associations: list[str]) -> dict:
        shaped = {k: v for k, v in record.items() if k != "properties"}
        wanted = set(properties) | {"hs_object_id", "hs_lastmodifieddate", "createdate"}
        shaped["properties"] = {k: v for k, v in record["properties"].items() if k in wanted}
        if object_type == "deals" and "companies" in associations and record["id"] in self.deal_company:
            shaped["associations"] = {
                "companies": {"results": [{"id": self.deal_company[record["id"]], "type": "deal_to_company"}]}
            }
        return shaped

    def _list(self, object_type: str, query: dict) -> dict:
        properties = [p for value in query.get("properties", []) for p in value.split(",")]
        associations = [a for value in query.get("associations", []) for a in value.split(",")]
        archived = (query.get("archived") or ["false"])[0].lower() == "true"
        with self.lock:
            rows = [
                self._shape(object_type, r, properties, associations)
                for r in self.objects[object_type].values()
                if r["archived"] == archived
            ]
        return self._page(rows, query)

    def _search(self, object_type: str, body: dict) -> dict:
        filters = [f for group in body.get("filterGroups") or [] for f in group.get("filters") or []]
        for f in filters:
            if f.get("propertyName") not in self.properties[object_type]:
                raise Reply(
                    400,
                    {
                        "status": "error",
                        "message": f"There was a problem with the request: unknown PROPERTY {f.get('propertyName')}",
                        "category": "VALIDATION_ERROR",
                        "correlationId": "fake",
                    },
                )
        with self.lock:
            rows = [
                r
                for r in self.objects[object_type].values()
                if not r["archived"] and all(_matches(r, f) for f in filters)
            ]
        rows.sort(key=lambda r: (r["properties"].get("hs_lastmodifieddate", ""), int(r["id"])))
        start = int(body.get("after") or 0)
        if start >= SEARCH_REACH:
            raise Reply(
                400,
                {
                    "status": "error",
                    "message": "Search results are limited to 10,000",
                    "category": "VALIDATION_ERROR",
                    "correlationId": "fake",
                },
            )
        page = self._page(
            [self._shape(object_type, r, body.get("properties") or [], []) for r in rows],
            {"after": [str(start)]},
            limit=int(body.get("limit") or 10),
        )
        page["total"] = len(rows)
        return page

    def _associations(self, body: dict) -> tuple[int, dict]:
        results = [
            {"from": {"id": i["id"]}, "to": [{"id": self.deal_company[i["id"]], "type": "deal_to_company"}]}
            for i in body.get("inputs") or []
            if i.get("id") in self.deal_company
        ]
        return 200, {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(self.clock),
            "completedAt": iso(self.clock),
        }

    def _batch_update(self, body: dict) -> tuple[int, dict]:
        inputs = body.get("inputs") or []
        if len(inputs) > PAGE_MAX:
            raise Reply(
                400,
                {
                    "status": "error",
                    "message": f"Batch input size {len(inputs)} is over the limit of 100",
                    "category": "VALIDATION_ERROR",
                    "correlationId": "fake",
                },
            )
        with self.lock:
            self.batch_calls += 1
            missing = [
                i.get("id")
                for i in inputs
                if i.get("id") not in self.objects["companies"] or self.objects["companies"][i["id"]]["archived"]
            ]
            unknown = sorted(
                {k for i in inputs for k in (i.get("properties") or {}) if k not in self.properties["companies"]}
            )
            if unknown:
                raise Reply(
                    400,
                    {
                        "status": "error",
                        "message": f"Property values were not valid: PROPERTY_DOESNT_EXIST {unknown[0]}",
                        "category": "VALIDATION_ERROR",
                        "correlationId": "fake",
                    },
                )
            results = []
            for item in inputs:
                if item.get("id") in missing:
                    continue
                self.updated.append({"id": item["id"], **item["properties"]})
                self.update("companies", item["id"], **item["properties"])
                results.append(self.objects["companies"][item["id"]])
        answer = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": iso(self.clock),
            "completedAt": iso(self.clock),
        }
        if missing:
            answer["numErrors"] = 1
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": "Could not get some COMPANY objects, they may be deleted or not exist.",
                    "context": {"ids": missing},
                    "links": {},
                    "errors": [],
                }
            ]
            return 207, answer
        return 200, answer


def _text(value) -> str:
    return "" if value is None else str(value)


def _property(name: str) -> dict:
    return {
        "name": name,
        "label": name,
        "type": "string",
        "fieldType": "text",
        "description": "",
        "groupName": "companyinformation",
        "options": [],
    }


def _matches(record: dict, f: dict) -> bool:
    value = record["properties"].get(f.get("propertyName"), "")
    target = f.get("value", "")
    operator = f.get("operator")
    if f.get("propertyName") == "hs_lastmodifieddate" and str(target).isdigit():
        target = iso(dt.datetime.fromtimestamp(int(target) / 1000, tz=dt.UTC))
    if operator == "EQ":
        return value == target
    if operator == "NEQ":
        return value != target
    if operator in ("GTE", "GT", "LTE", "LT"):
        return {"GTE": value >= target, "GT": value > target, "LTE": value <= target, "LT": value < target}[operator]
    raise Reply(
        400,
        {
            "status": "error",
            "message": f"unsupported operator {operator}",
            "category": "VALIDATION_ERROR",
            "correlationId": "fake",
        },
    )
