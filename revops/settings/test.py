"""Settings for the test suite: base settings with fast hashing and captured mail."""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-used-anywhere-else-0123456789abcdef")
os.environ.setdefault("REVOPS_EMBEDDED_SERVICES", "true")
os.environ.setdefault("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver")
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SESSION_COOKIE_SECURE", "false")
os.environ.setdefault("CSRF_COOKIE_SECURE", "false")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
# The webhook tests post to a receiver on 127.0.0.1.
os.environ.setdefault("WEBHOOKS_ALLOW_PRIVATE", "true")

from revops.devservices import with_redis_db
from revops.settings.base import *  # noqa: F403

# Each pytest-xdist worker gets Redis databases of its own (the cache and what the test
# process publishes), apart from REDIS_URL's, which `make run` may be using meanwhile.
# tests/conftest.py gives worker processes the database after these.
_XDIST_INDEX = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
TEST_REDIS_DB = 2 + 3 * _XDIST_INDEX
CACHES["default"]["LOCATION"] = with_redis_db(REDIS_URL, TEST_REDIS_DB)  # noqa: F405
# A worker process the tests start is told its broker explicitly (CELERY_BROKER_URL).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=with_redis_db(REDIS_URL, TEST_REDIS_DB + 1))  # noqa: F405
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL)  # noqa: F405

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
CELERY_TASK_ALWAYS_EAGER = False
REFERENCE_STRICT = True  # a {% metric %} label without its docs/metrics.md entry fails the page
# The suite flushes tables between transactional tests with TRUNCATE; the append-only
# tables refuse it unless the connection allows it (comp.models.NO_TRUNCATE).
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c revops.allow_truncate=on"  # noqa: F405
