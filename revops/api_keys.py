"""API keys: created once (the secret is shown once), stored as a SHA-256, revocable.

Keys are 32 random bytes, so a fast hash is enough: there is nothing to brute-force.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from revops.errors import ApplicationError
from revops.models import ApiKey, Role

KEY_PREFIX = "rvk_"
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def _hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def api_key_create(
    *, name: str, scopes: list[str], created_by=None, acts_as=None, rate_limit_per_minute: int = 600
) -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is never stored or shown again.

    A key with the read scope reads as a person (``acts_as``, by default its creator): it
    sees what that person may see. Someone creating a key may only hand it the reading
    rights of people whose data they may see themselves, and never an admin's unless they
    are one, so a key never widens what its creator can reach.
    """
    from revops.access import people_in_scope

    name = name.strip()
    if not name:
        raise ApplicationError("A key needs a name.")
    unknown = sorted(set(scopes) - set(ApiKey.Scope.values))
    if unknown or not scopes:
        raise ApplicationError(
            f"Unknown scope(s) {', '.join(unknown)}; choose from {', '.join(ApiKey.Scope.values)}."
            if unknown
            else "A key needs at least one scope."
        )
    if rate_limit_per_minute < 1:
        raise ApplicationError("The rate limit must be at least 1 request per minute.")
    if ApiKey.Scope.READ in scopes:
        acts_as = acts_as or created_by
        if acts_as is None:
            raise ApplicationError(
                "A read key must read as a person: it sees exactly what that person may see. "
                "Say whose data it reads (create_api_key NAME --scope read --as EMAIL)."
            )
        if not acts_as.is_active:
            raise ApplicationError(f"{acts_as} is not active; a key cannot read as them.")
        if created_by is not None and (
            not people_in_scope(created_by).filter(pk=acts_as.pk).exists()
            or (acts_as.role == Role.ADMIN and created_by.role != Role.ADMIN)
        ):
            raise ApplicationError(f"You cannot create a key that reads as {acts_as}: it would see more than you may.")
    else:
        acts_as = None  # an events key reads nothing
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name,
        prefix=raw[: len(KEY_PREFIX) + 6],
        hashed_key=_hash(raw),
        scopes=sorted(set(scopes)),
        rate_limit_per_minute=rate_limit_per_minute,
        created_by=created_by,
        acts_as=acts_as,
    )
    return key, raw


def api_key_reads(key: ApiKey) -> str:
    """What a key can read, in words (Data → API keys shows it beside each key)."""
    from revops.access import sees_company

    if ApiKey.Scope.READ not in key.scopes:
        return "Nothing: it can only send usage events."
    person = key.acts_as
    if person is None:
        return "Nothing: the person it read as was removed."
    who = f"{person} ({person.get_role_display().lower()})"
    if not person.is_active:
        return f"Nothing: {who} is no longer active."
    if sees_company(person):
        return f"Everything {who} may see: every account, alert, forecast and statement."
    return f"What {who} may see: their own (and their teams') accounts, alerts, forecasts and statements."


def api_key_revoke(*, key: ApiKey) -> ApiKey:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    return key


def api_key_authenticate(raw: str) -> ApiKey | None:
    """The active key for this secret, or None. Records use at most once a minute."""
    if not raw.startswith(KEY_PREFIX):
        return None
    key = (
        ApiKey.objects.select_related("acts_as", "created_by")
        .filter(hashed_key=_hash(raw), revoked_at__isnull=True)
        .first()
    )
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        ).update(last_used_at=now)
    return key


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: int


def api_key_rate_check(*, key: ApiKey, now: dt.datetime | None = None) -> RateDecision:
    """A fixed one-minute window per key, counted in the shared cache."""
    now = now or timezone.now()
    window = int(now.timestamp()) // 60
    counter = f"apikey-rate:{key.pk}:{window}"
    cache.add(counter, 0, timeout=120)
    try:
        used = cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.set(counter, 1, timeout=120)
        used = 1
    if used > key.rate_limit_per_minute:
        return RateDecision(False, 60 - int(now.timestamp()) % 60 or 1)
    return RateDecision(True, 0)
