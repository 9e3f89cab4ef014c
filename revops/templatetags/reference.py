"""``{% metric key label definition %}``: a metric's label, linked to its entry in the
metrics reference (docs/metrics.md), its one-line definition as the hover text."""

from __future__ import annotations

import logging

from django import template
from django.conf import settings
from django.utils.html import format_html

from revops.reference import doc_url, metric_anchors

register = template.Library()
log = logging.getLogger(__name__)


class UnknownMetric(LookupError):
    pass


@register.simple_tag
def metric(key: str, label, definition: str = ""):
    if key not in metric_anchors():
        if getattr(settings, "REFERENCE_STRICT", False):
            raise UnknownMetric(f'docs/metrics.md has no entry <a id="{key}"></a> for the label {label!r}')
        log.warning("docs/metrics.md has no entry for %s", key)
    return format_html(
        '<a class="metric-label" href="{}" title="{}">{}</a>', doc_url("metrics", key), definition, label
    )


@register.simple_tag
def metric_url(key: str) -> str:
    return doc_url("metrics", key)
