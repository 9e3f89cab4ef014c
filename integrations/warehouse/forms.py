"""The warehouse source form: what a finance or admin person types, checked field by field."""

from __future__ import annotations

from django import forms

from integrations.models import CursorKind, WarehouseMode, WarehouseSource

MAP_FIELDS = {
    "account": "Account (external id) column",
    "meter": "Meter (key) column",
    "day": "Day column (aggregates)",
    "quantity": "Quantity column",
    "event_count": "Event count column (aggregates, optional)",
    "id": "Event id column (events)",
    "time": "Time column (events)",
    "properties": "Properties column (events, optional JSON)",
}


class WarehouseSourceForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Also the events' source: ids are unique per source.")
    url = forms.CharField(
        max_length=1000,
        required=False,
        label="SQLAlchemy URL",
        widget=forms.PasswordInput(render_value=False),
        help_text="e.g. postgresql+psycopg://reader:secret@host:5432/analytics. Stored encrypted; "
        "leave blank to keep the stored one.",
    )
    mode = forms.ChoiceField(choices=WarehouseMode.choices)
    query = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 5}), help_text="One SELECT. Or give a table below."
    )
    table = forms.CharField(max_length=300, required=False, help_text="schema.table, when no query is given.")
    cursor_column = forms.CharField(
        max_length=100, required=False, help_text="updated_at or an increasing id; blank: every pull reads all rows."
    )
    cursor_kind = forms.ChoiceField(choices=CursorKind.choices)
    lookback = forms.IntegerField(
        min_value=0,
        max_value=10**12,
        initial=48,
        help_text="Re-read behind the cursor for late rows: hours (timestamp cursor) or ids (id cursor).",
    )
    schedule_minutes = forms.IntegerField(min_value=0, max_value=7 * 24 * 60, initial=60, help_text="0: off.")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for name, label in MAP_FIELDS.items():
            self.fields[f"map_{name}"] = forms.CharField(max_length=100, required=False, label=label)

    @classmethod
    def initial_for(cls, source: WarehouseSource) -> dict:
        lookback = source.lookback // 3600 if source.cursor_kind == CursorKind.TIMESTAMP else source.lookback
        initial = {
            "name": source.name,
            "mode": source.mode,
            "query": source.query,
            "table": source.table,
            "cursor_column": source.cursor_column,
            "cursor_kind": source.cursor_kind,
            "lookback": lookback,
            "schedule_minutes": source.schedule_minutes,
        }
        initial.update({f"map_{k}": v for k, v in (source.mapping or {}).items()})
        return initial

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        lookback = data["lookback"] * 3600 if data["cursor_kind"] == CursorKind.TIMESTAMP else data["lookback"]
        return {
            "name": data["name"].strip(),
            "url": data["url"],
            "mode": data["mode"],
            "query": data["query"],
            "table": data["table"],
            "mapping": {k: data[f"map_{k}"].strip() for k in MAP_FIELDS if data[f"map_{k}"].strip()},
            "cursor_column": data["cursor_column"],
            "cursor_kind": data["cursor_kind"],
            "lookback": lookback,
            "schedule_minutes": data["schedule_minutes"],
        }
