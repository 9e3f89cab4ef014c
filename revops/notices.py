"""Notices on the home page that come from apps the core does not import.

An app registers a provider in its ``AppConfig.ready``; the home view asks every provider
for the notices that concern the person signed in. The arrows keep pointing one way:
apps know the core, the core only knows that providers exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest


@dataclass(frozen=True)
class Notice:
    level: str  # "info", "warning" or "error": the banner's colour
    text: str
    detail: str = ""


NoticeProvider = Callable[[HttpRequest], list[Notice]]
_providers: list[NoticeProvider] = []


def notice_provider_register(provider: NoticeProvider) -> NoticeProvider:
    if provider not in _providers:
        _providers.append(provider)
    return provider


def notices_for(request: HttpRequest) -> list[Notice]:
    return [notice for provider in _providers for notice in provider(request)]
