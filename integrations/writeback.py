"""What revops writes back to the CRM's accounts: its metrics, only the values that changed.

Per synced account: burn rate (percent), run rate, health score, band, next comp gate
date (usage's stored metrics, the newest snapshot) and the 90-day revenue forecast (the
newest forecast snapshot). The values last written are kept per record
(``ExternalRecord.pushed``); an account whose values are all as written is not sent.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from forecasting.models import AccountForecast
from integrations.models import Connection, ExternalRecord
from usage.models import AccountMetrics
from usage.signals.selectors import metrics_as_of

CENT = Decimal("0.01")
WRITEBACK_KEYS = ("burn_rate", "run_rate", "health", "band", "next_gate_on", "forecast_90d")


def _money(value: Decimal | None) -> str:
    return "" if value is None else str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def metric_values(account_ids: list[int]) -> dict[int, dict[str, str]]:
    """Each account's write-back values as text ("" for none), one query per source."""
    as_of = metrics_as_of()
    values: dict[int, dict[str, str]] = {pk: dict.fromkeys(WRITEBACK_KEYS, "") for pk in account_ids}
    if as_of is not None:
        rows = AccountMetrics.objects.filter(as_of=as_of, account_id__in=account_ids).values_list(
            "account_id", "burn_rate", "run_rate", "health_score", "band", "next_gate_on"
        )
        for pk, burn, run_rate, health, band, gate in rows:
            values[pk].update(
                burn_rate=_money(burn * 100) if burn is not None else "",
                run_rate=_money(run_rate),
                health=str(health),
                band=band,
                next_gate_on=gate.isoformat() if gate else "",
            )
    forecasts = (
        AccountForecast.objects.filter(account_id__in=account_ids)
        .order_by("account_id", "-as_of")
        .distinct("account_id")
        .values_list("account_id", "next_90")
    )
    for pk, next_90 in forecasts:
        values[pk]["forecast_90d"] = _money(next_90)
    return values


def _wire(key: str, text: str):
    """The value for a CRM field: numbers as Decimal (each connector writes them in its wire
    format), blanks as None (clears the field)."""
    if text == "":
        return None
    if key in ("burn_rate", "run_rate", "forecast_90d"):
        return Decimal(text)
    if key == "health":
        return int(text)
    return text


def changed_values(connection: Connection) -> tuple[dict[str, dict], dict[str, dict[str, str]], list[ExternalRecord]]:
    """(CRM id → field values to send, CRM id → the new text values, the records) for the
    connection's live accounts whose values differ from those last written."""
    fields = {k: v for k, v in (connection.mapping.get("writeback") or {}).items() if v and k in WRITEBACK_KEYS}
    records = list(
        ExternalRecord.objects.filter(
            connection=connection, object_type="account", deleted_at__isnull=True, local_id__isnull=False
        )
    )
    values = metric_values([r.local_id for r in records])
    updates: dict[str, dict] = {}
    texts: dict[str, dict[str, str]] = {}
    for record in records:
        now = values.get(record.local_id, {})
        changed = {key: now.get(key, "") for key in fields if record.pushed.get(key) != now.get(key, "")}
        if changed:
            updates[record.crm_id] = {fields[key]: _wire(key, text) for key, text in changed.items()}
            texts[record.crm_id] = changed
    return updates, texts, records
