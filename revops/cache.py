"""Django's Redis cache, degraded to "allow and log" while Redis is unreachable.

The cache holds nothing that must survive: rate-limit counters (logins, API keys),
debounce markers and computed pages. If Redis is away, reads miss, writes are dropped and
counters count nothing, so logins, the events API and key-authenticated reads keep
answering (without their limits) instead of failing with 500. Each outage is logged, once
a minute at most. Errors that are not about the connection still raise.
"""

from __future__ import annotations

import functools
import logging
import time

from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)
LOG_EVERY_S = 60
_last_logged = 0.0


def _log(operation: str, exc: Exception) -> None:
    global _last_logged
    now = time.monotonic()
    if now - _last_logged >= LOG_EVERY_S:
        _last_logged = now
        logger.warning("cache unreachable (%s: %s); allowing and carrying on without it", operation, exc)


def _degrade(fallback):
    """Run the cache operation; while Redis is unreachable, return ``fallback(args, kwargs)``."""

    def decorate(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except UNREACHABLE as exc:
                _log(method.__name__, exc)
                return fallback(*args, **kwargs)

        return run

    return decorate


def _default(key, default=None, *args, **kwargs):
    return default


class ResilientRedisCache(RedisCache):
    get = _degrade(_default)(RedisCache.get)
    get_many = _degrade(lambda keys, *a, **k: {})(RedisCache.get_many)
    has_key = _degrade(lambda *a, **k: False)(RedisCache.has_key)
    # add: "already there" would stop a debounced task from ever being sent; the broker
    # is the same Redis, so nothing could be sent anyway. True lets callers go on.
    add = _degrade(lambda *a, **k: True)(RedisCache.add)
    set = _degrade(lambda *a, **k: None)(RedisCache.set)
    set_many = _degrade(lambda *a, **k: [])(RedisCache.set_many)
    touch = _degrade(lambda *a, **k: False)(RedisCache.touch)
    delete = _degrade(lambda *a, **k: False)(RedisCache.delete)
    delete_many = _degrade(lambda *a, **k: None)(RedisCache.delete_many)
    # A counter that counts nothing: a rate limit allows the request.
    incr = _degrade(lambda *a, **k: 0)(RedisCache.incr)
    decr = _degrade(lambda *a, **k: 0)(RedisCache.decr)
    clear = _degrade(lambda *a, **k: None)(RedisCache.clear)
