from __future__ import annotations

from django import forms


class PlanUploadForm(forms.Form):
    file = forms.FileField(
        help_text="A plan document, YAML (.yaml, .yml) or JSON (.json). See the field reference below."
    )
