"""HubSpot through ``hubspot-api-client``: CRM v3 companies, owners, deals; batch updates.

A first (full) read lists every company and deal (``after`` paging, 100 a page, deals
with their company associations); later reads search for records with
``hs_lastmodifieddate`` at or after the cursor (the search API returns at most 10,000
results, so more changes than that read everything again) and read the changed deals'
company associations in one batch call per 100. Archived (deleted) companies are listed
each run; a merged company is archived too, and its winner lists it in
``hs_merged_object_ids``. A 429 is retried after its ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

from hubspot import HubSpot
from hubspot.crm.associations.models import BatchInputPublicObjectId
from hubspot.crm.companies import ApiException as CompaniesApiException
from hubspot.crm.companies.models import BatchInputSimplePublicObjectBatchInput, PublicObjectSearchRequest
from hubspot.crm.deals.models import PublicObjectSearchRequest as DealSearchRequest
from urllib3.util.retry import Retry

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
    parse_retry_after,
)

PAGE = 100
SEARCH_MAX = 10_000
BATCH_MAX = 100
MODIFIED = "hs_lastmodifieddate"

DEFAULT_MAPPING = {
    "account": {
        "name": "name",
        "parent": "hs_parent_company_id",
        "owner": "hubspot_owner_id",
        "segment": "revops_segment",
        "region": "country",
        "industry": "industry",
    },
    "segment_default": "",
    "segment_values": {"Mid-Market": "mid-market", "Small Business": "smb"},
    # Company properties holding an owner id, and the revops role each one gives.
    "team_roles": {"revops_expand_owner_id": "expand_ae", "revops_csm_owner_id": "csm"},
    "won_stage": "closedwon",
    "deal": {
        "amount": "amount",
        "close_date": "closedate",
        "term_months": "revops_term_months",
        "ramp_days": "revops_ramp_days",
    },
    "writeback": {
        "burn_rate": "revops_burn_rate",
        "run_rate": "revops_run_rate",
        "health": "revops_health",
        "band": "revops_band",
        "next_gate_on": "revops_next_gate",
        "forecast_90d": "revops_forecast_90d",
    },
}


def record_url(portal_id: str, crm_id: str) -> str:
    return f"https://app.hubspot.com/contacts/{portal_id}/company/{crm_id}"


def _millis(cursor: str) -> str:
    moment = dt.datetime.fromisoformat(cursor.replace("Z", "+00:00"))
    return str(int(moment.timestamp() * 1000))


def _iso(value) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return str(value or "")


class HubSpotConnector:
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
        self.mapping = mapping
        self.retrier = retrier or Retrier()
        # No status retries inside urllib3: rate limits are waited out (and counted) by the Retrier.
        options = {
            "access_token": credentials.get("access_token", ""),
            "host": self.base_url,
            "retry": Retry(total=2, respect_retry_after_header=False),
        }
        if ca_file:
            options["ssl_ca_cert"] = ca_file
        self.client = HubSpot(**options)

    def _call(self, fn: Callable, what: str):
        def attempt():
            try:
                return fn()
            except Exception as exc:
                status = getattr(exc, "status", None)
                if status is None or not hasattr(exc, "body"):
                    if exc.__class__.__module__.startswith("urllib3"):
                        raise CrmError(
                            f"{what}: could not reach HubSpot at {self.base_url} ({exc.__class__.__name__})."
                        ) from None
                    raise
                if status == 429 or status == 502 or status == 503:
                    headers = dict(exc.headers or {})
                    raise RateLimited(f"HTTP {status}", parse_retry_after(headers.get("Retry-After"))) from None
                body = exc.body.decode() if isinstance(exc.body, bytes) else str(exc.body or "")
                if status == 400 and "PROPERTY" in body.upper():
                    raise MappingError(f"{what}: HubSpot says {body[:300]}") from None
                if status == 401:
                    raise CrmError(
                        f"{what}: HubSpot refused the access token (401); connect again with a valid private app token."
                    ) from None
                raise CrmError(f"{what}: HubSpot answered {status}: {body[:300]}") from None

        return self.retrier.call(attempt, what)

    def _fields(self, section: str) -> dict[str, str]:
        return {k: v for k, v in self.mapping.get(section, {}).items() if v}

    def check_mapping(self) -> None:
        for section, object_type in (("account", "companies"), ("deal", "deals"), ("writeback", "companies")):
            known = {
                p.name
                for p in self._call(
                    lambda t=object_type: self.client.crm.properties.core_api.get_all(t).results,
                    f"read {object_type} properties",
                )
            }
            names = dict(self._fields(section))
            if section == "account":
                names |= {f"team_roles.{p}": p for p in self.mapping.get("team_roles") or {}}
            for key, name in names.items():
                if name not in known:
                    raise MappingError(
                        f"The mapping {section}.{key} names the {object_type} property {name}, which this portal does not have."
                    )

    # --- reads -------------------------------------------------------------------------

    def _pages(self, fetch: Callable[[str | None], object], what: str) -> Iterator:
        after = None
        while True:
            page = self._call(lambda after=after: fetch(after), what)
            yield from page.results
            paging = getattr(page, "paging", None)
            after = paging.next.after if paging and paging.next else None
            if not after:
                return

    def _changed(
        self, api, request_type, properties: list[str], cursor: str, extra: list[dict], what: str
    ) -> list | None:
        """Records modified at or after ``cursor`` by search, or None when there are more than search can return."""
        filters = [{"propertyName": MODIFIED, "operator": "GTE", "value": _millis(cursor)}, *extra]
        found = []
        after = None
        while True:
            request = request_type(
                filter_groups=[{"filters": filters}],
                sorts=[{"propertyName": MODIFIED, "direction": "ASCENDING"}],
                properties=properties,
                limit=PAGE,
                after=after,
            )
            page = self._call(lambda request=request: api.do_search(public_object_search_request=request), what)
            if page.total > SEARCH_MAX:
                return None
            found += page.results
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return found

    def fetch(self, *, cursors: dict[str, str], full: bool) -> CrmBatch:
        self.check_mapping()
        batch = CrmBatch(cursors=dict(cursors), full_accounts=full or "companies" not in cursors)
        account = self._fields("account")
        roles = self.mapping.get("team_roles") or {}
        deal_fields = self._fields("deal")
        crm = self.client.crm

        for owner in self._pages(lambda after: crm.owners.owners_api.get_page(limit=PAGE, after=after), "read owners"):
            batch.users.append(
                CrmUser(
                    crm_id=str(owner.id),
                    email=owner.email or "",
                    name=f"{owner.first_name or ''} {owner.last_name or ''}".strip(),
                )
            )

        properties = list(dict.fromkeys([*account.values(), *roles, MODIFIED, "hs_merged_object_ids"]))
        companies = None
        if not full and "companies" in cursors:
            companies = self._changed(
                crm.companies.search_api,
                PublicObjectSearchRequest,
                properties,
                cursors["companies"],
                [],
                "search companies",
            )
        if companies is None:
            companies = list(
                self._pages(
                    lambda after: crm.companies.basic_api.get_page(limit=PAGE, after=after, properties=properties),
                    "read companies",
                )
            )
        for company in companies:
            p = company.properties or {}
            modstamp = _iso(p.get(MODIFIED) or company.updated_at)
            batch.accounts.append(
                CrmAccount(
                    crm_id=str(company.id),
                    name=(p.get(account.get("name", "")) or "").strip(),
                    parent_crm_id=(p.get(account.get("parent", "")) or "").strip(),
                    segment=(p.get(account.get("segment", "")) or "").strip(),
                    region=(p.get(account.get("region", "")) or "").strip(),
                    industry=(p.get(account.get("industry", "")) or "").strip(),
                    owner_crm_id=(p.get(account.get("owner", "")) or "").strip(),
                    modstamp=modstamp,
                )
            )
            for name in roles:
                if p.get(name):
                    batch.team.append(
                        CrmTeamRole(
                            account_crm_id=str(company.id), user_crm_id=str(p[name]), crm_role=name, modstamp=modstamp
                        )
                    )
            if modstamp > batch.cursors.get("companies", ""):
                batch.cursors["companies"] = modstamp
        archived = self._pages(
            lambda after: crm.companies.basic_api.get_page(
                limit=PAGE, after=after, archived=True, properties=["hs_merged_object_ids"]
            ),
            "read archived companies",
        )
        merged_into: dict[str, str] = {}
        for company in companies:
            for loser in ((company.properties or {}).get("hs_merged_object_ids") or "").split(";"):
                if loser:
                    merged_into[loser] = str(company.id)
        for company in archived:
            batch.accounts.append(
                CrmAccount(
                    crm_id=str(company.id),
                    name="",
                    parent_crm_id="",
                    segment="",
                    region="",
                    industry="",
                    owner_crm_id="",
                    modstamp=_iso(company.archived_at or company.updated_at),
                    deleted=True,
                    merged_into=merged_into.get(str(company.id), ""),
                )
            )

        won = self.mapping.get("won_stage") or "closedwon"
        deal_properties = list(dict.fromkeys(["dealname", "dealstage", MODIFIED, *deal_fields.values()]))
        deals = None
        if not full and "deals" in cursors:
            stage = [{"propertyName": "dealstage", "operator": "EQ", "value": won}]
            deals = self._changed(
                crm.deals.search_api, DealSearchRequest, deal_properties, cursors["deals"], stage, "search deals"
            )
            if deals is not None:
                companies_of = self._deal_companies([str(d.id) for d in deals])
        if deals is None:
            deals = list(
                self._pages(
                    lambda after: crm.deals.basic_api.get_page(
                        limit=PAGE, after=after, properties=deal_properties, associations=["companies"]
                    ),
                    "read deals",
                )
            )
            companies_of = {}
            for deal in deals:
                associated = (deal.associations or {}).get("companies")
                if associated and associated.results:
                    companies_of[str(deal.id)] = str(associated.results[0].id)
        for deal in deals:
            p = deal.properties or {}
            modstamp = _iso(p.get(MODIFIED) or deal.updated_at)
            if modstamp > batch.cursors.get("deals", ""):
                batch.cursors["deals"] = modstamp
            if p.get("dealstage") != won:
                continue
            batch.deals.append(
                CrmDeal(
                    crm_id=str(deal.id),
                    account_crm_id=companies_of.get(str(deal.id), ""),
                    name=p.get("dealname") or "",
                    amount=(p.get(deal_fields.get("amount", "")) or "").strip(),
                    close_date=(p.get(deal_fields.get("close_date", "")) or "")[:10],
                    term_months=(p.get(deal_fields.get("term_months", "")) or "").strip(),
                    ramp_days=(p.get(deal_fields.get("ramp_days", "")) or "").strip(),
                    won=True,
                    modstamp=modstamp,
                )
            )
        return batch

    def _deal_companies(self, deal_ids: list[str]) -> dict[str, str]:
        out = {}
        batch_api = self.client.crm.associations.batch_api
        for start in range(0, len(deal_ids), BATCH_MAX):
            inputs = BatchInputPublicObjectId(inputs=[{"id": i} for i in deal_ids[start : start + BATCH_MAX]])
            answer = self._call(
                lambda inputs=inputs: batch_api.read("deals", "companies", batch_input_public_object_id=inputs),
                "read deal associations",
            )
            for result in answer.results:
                if result.to:
                    out[str(result._from.id)] = str(result.to[0].id)
        return out

    # --- writes ------------------------------------------------------------------------

    def push(self, updates: dict[str, dict[str, object]]) -> list[PushResult]:
        """Company properties in batches of 100; HubSpot properties are text on the wire."""
        results: list[PushResult] = []
        items = list(updates.items())
        batch_api = self.client.crm.companies.batch_api
        for start in range(0, len(items), BATCH_MAX):
            chunk = items[start : start + BATCH_MAX]
            body = BatchInputSimplePublicObjectBatchInput(
                inputs=[
                    {"id": crm_id, "properties": {k: "" if v is None else str(v) for k, v in values.items()}}
                    for crm_id, values in chunk
                ]
            )
            answer = self._call(
                lambda body=body: batch_api.update(batch_input_simple_public_object_batch_input=body),
                "write back to companies",
            )
            failed: dict[str, str] = {}
            for error in getattr(answer, "errors", None) or []:
                for crm_id in (error.context or {}).get("ids", []):
                    failed[str(crm_id)] = f"{error.category}: {error.message}"
            results += [
                PushResult(crm_id=crm_id, ok=crm_id not in failed, error=failed.get(crm_id, "")) for crm_id, _ in chunk
            ]
        return results


Connector = HubSpotConnector
__all__ = ["DEFAULT_MAPPING", "CompaniesApiException", "Connector", "record_url"]
