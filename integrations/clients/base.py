"""What every connector gives the sync: CRM records in one shape, writes, and retries.

A connector (``clients.salesforce``, ``clients.hubspot``) reads the records changed since
its cursors into the dataclasses below (values as the CRM's text, checked later by the
accounts imports), and writes field values back in bulk.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from django.conf import settings

from revops.errors import ApplicationError

logger = logging.getLogger(__name__)
T = TypeVar("T")


class CrmError(ApplicationError):
    """The CRM refused or failed a call; the message says what it answered."""


class MappingError(CrmError):
    """A mapping names a field the CRM does not have (or of the wrong kind)."""


class RateLimited(Exception):
    """Raised inside a call when the CRM said "slow down"; ``retry_after`` in seconds if it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class CrmUser:
    crm_id: str
    email: str
    name: str = ""


@dataclass
class CrmAccount:
    crm_id: str
    name: str
    parent_crm_id: str
    segment: str
    region: str
    industry: str
    owner_crm_id: str
    modstamp: str
    deleted: bool = False
    merged_into: str = ""


@dataclass
class CrmTeamRole:
    """Someone on an account's team in a role the mapping turns into an ownership role."""

    account_crm_id: str
    user_crm_id: str
    crm_role: str
    modstamp: str
    deleted: bool = False


@dataclass
class CrmDeal:
    crm_id: str
    account_crm_id: str
    name: str
    amount: str
    close_date: str
    term_months: str
    ramp_days: str
    won: bool
    modstamp: str
    deleted: bool = False


@dataclass
class CrmBatch:
    """Everything read in one run, and the cursors to store once it is applied."""

    users: list[CrmUser] = field(default_factory=list)
    accounts: list[CrmAccount] = field(default_factory=list)
    team: list[CrmTeamRole] = field(default_factory=list)
    deals: list[CrmDeal] = field(default_factory=list)
    cursors: dict[str, str] = field(default_factory=dict)
    full_accounts: bool = False  # the whole account list was read (not only changes)


@dataclass
class PushResult:
    crm_id: str
    ok: bool
    error: str = ""


class Retrier:
    """Calls with retries on rate limits: the CRM's ``Retry-After`` when it gives one, else
    exponential backoff with jitter, capped; gives up after ``CRM_RETRY_MAX`` waits in a row."""

    def __init__(self, on_wait: Callable[[float, str], None] | None = None) -> None:
        self.on_wait = on_wait
        self.waits = 0

    def call(self, fn: Callable[[], T], what: str) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except RateLimited as limited:
                attempt += 1
                if attempt > settings.CRM_RETRY_MAX:
                    raise CrmError(
                        f"{what}: still rate-limited after {settings.CRM_RETRY_MAX} retries ({limited}); "
                        "the next scheduled run will try again."
                    ) from None
                base = settings.CRM_RETRY_BASE_S * 2 ** (attempt - 1)
                delay = limited.retry_after if limited.retry_after is not None else base * (1 + random.random() / 2)  # noqa: S311
                delay = min(delay, settings.CRM_RETRY_CAP_S)
                self.waits += 1
                logger.info("%s: rate-limited (%s), retry %s in %.2f s", what, limited, attempt, delay)
                if self.on_wait:
                    self.on_wait(delay, str(limited))
                time.sleep(delay)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None
