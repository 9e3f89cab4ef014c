"""``{% submission_token form %}``: the one-time token of a form that creates something."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from revops.idempotency import FIELD, new_token, token_from

register = template.Library()


@register.simple_tag
def submission_token(form=None) -> str:
    """A hidden field with a fresh token, or, for a form sent back with errors, the token it
    was posted with (that post was not applied, so correcting it and sending it again is
    still the first submission)."""
    posted = token_from(form.data) if form is not None and getattr(form, "is_bound", False) else None
    return format_html('<input type="hidden" name="{}" value="{}">', FIELD, posted or new_token())
