"""Settings shared by every environment.

Production differs only by environment variables, each documented in ``.env.example``.
Everything is read through django-environ so a malformed value fails at start-up.
"""

from __future__ import annotations

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from revops import devservices

BASE_DIR = Path(__file__).resolve().parent.parent.parent
RUN_DIR = devservices.RUN_DIR

env = environ.Env()
# A developer's .env is read when present; the real environment always wins.
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# A {% metric %} label whose entry is missing from docs/metrics.md fails the page (else it logs).
REFERENCE_STRICT = env.bool("REFERENCE_STRICT", default=DEBUG)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-used-when-DEBUG-is-on"  # noqa: S105
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_htmx",
    "ninja",  # its Swagger UI from our static files, not a CDN
    "template_partials",
    "rules.apps.AutodiscoverRulesConfig",
    "pgtrigger",
    "pghistory",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",  # SSO (revops/sso/): company identity providers, configured in the DB
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.saml",
    "revops",
    "revops.sso",  # SSO and SCIM, inside the core (label "sso")
    "accounts",
    "usage",
    "comp",
    "forecasting",
    "reviews",
    "integrations",  # CRM, warehouse and billing sources, on top of the apps; no app imports it
    "webhooks",  # signed webhooks out (Standard Webhooks), on top; apps emit revops.events
    "exports",  # exports for BI (CSV/Parquet by day partition) and the read API cursor, on top
    "demo",  # on top of every app; no app imports it
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "revops.middleware.SecurityHeadersMiddleware",
    "revops.middleware.RefuseNulBytesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "revops.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "revops.middleware.HtmxMessagesMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "revops.middleware.RequireMfaForPrivilegedRolesMiddleware",
    "revops.middleware.AuditContextMiddleware",
]

ROOT_URLCONF = "revops.urls"
WSGI_APPLICATION = "revops.wsgi.application"
ASGI_APPLICATION = "revops.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "revops.context_processors.navigation",
            ],
        },
    },
]

# --- Database: PostgreSQL only ---------------------------------------------------
# Unset DATABASE_URL means "the project-local embedded server" (see revops/devservices.py);
# production must say where its database is.
# REVOPS_EMBEDDED_SERVICES lets the test suite use them with DEBUG off.
EMBEDDED_SERVICES_ALLOWED = DEBUG or env.bool("REVOPS_EMBEDDED_SERVICES", default=False)
if not env.str("DATABASE_URL", default="") and not EMBEDDED_SERVICES_ALLOWED:
    raise ImproperlyConfigured("DATABASE_URL must be set when DEBUG is off.")
DATABASES = {"default": env.db_url_config(devservices.database_url())}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("revops runs on PostgreSQL only: DATABASE_URL must be postgres://…")
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# A streaming standby of DATABASE_URL: GET pages read from it unless it lags more than
# REPLICA_MAX_LAG_S or this browser wrote something it has not replayed (revops/replica.py).
REPLICA_MAX_LAG_S = env.float("REPLICA_MAX_LAG_S", default=30.0)
if DATABASE_REPLICA_URL := env.str("DATABASE_REPLICA_URL", default=""):
    DATABASES["replica"] = {
        **env.db_url_config(DATABASE_REPLICA_URL),
        "CONN_MAX_AGE": DATABASES["default"]["CONN_MAX_AGE"],
        "CONN_HEALTH_CHECKS": True,
        "ATOMIC_REQUESTS": False,
        "TEST": {"MIRROR": "default"},  # the suite's tests see one database
    }
    # A replica that is away costs a page two seconds at most before it falls back.
    DATABASES["replica"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 2)
    DATABASE_ROUTERS = ["revops.replica.ReplicaRouter"]
    # Inside the session and user middleware, so the user is loaded under its routing.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "revops.replica.ReplicaMiddleware",
    )

# Behind PgBouncer in transaction pooling mode, consecutive transactions of one Django
# connection may run on different server connections: nothing may live in the session.
# Server-side cursors (.iterator()) are such state. Django already turns psycopg's
# prepared statements off (prepare_threshold=None); SET TIME ZONE at connect is tracked
# and replayed by PgBouncer. Celery workers must not use transaction pooling: the webhook
# sender holds a session advisory lock per endpoint (webhooks.services.endpoint_deliver)
# and exports stream tables with .iterator(); point theirs at PostgreSQL or a session pool.
DATABASE_POOLING = env.str("DATABASE_POOLING", default="session")
if DATABASE_POOLING not in {"session", "transaction"}:
    raise ImproperlyConfigured("DATABASE_POOLING must be 'session' or 'transaction'.")
if DATABASE_POOLING == "transaction":
    for _database in DATABASES.values():
        _database["DISABLE_SERVER_SIDE_CURSORS"] = True
        _database.setdefault("OPTIONS", {})["prepare_threshold"] = None

# --- Redis: the cache, the Celery broker and its results ------------------------------
# One code path everywhere: unset REDIS_URL means "the project-local embedded Redis" (see
# revops/devservices.py), exactly as for the database; production must say where it is.
if not env.str("REDIS_URL", default="") and not EMBEDDED_SERVICES_ALLOWED:
    raise ImproperlyConfigured("REDIS_URL must be set when DEBUG is off.")
REDIS_URL = devservices.redis_url()
# Redis, degraded to "allow and log" while unreachable (revops/cache.py): short timeouts so
# a Redis that is away costs a request half a second, not a worker.
CACHES = {
    "default": {
        "BACKEND": "revops.cache.ResilientRedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 2},
    }
}

# --- People and login ---------------------------------------------------------------
AUTH_USER_MODEL = "revops.User"
AUTHENTICATION_BACKENDS = [
    "rules.permissions.ObjectPermissionBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_ADAPTER = "revops.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
# Failed logins are counted in the cache (Redis or the database cache), per IP and per email.
# Addresses (or networks) of the reverse proxies in front of the app: behind them the client
# is the right-most X-Forwarded-For hop that is not one of them. Empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
ACCOUNT_RATE_LIMITS = {
    # key = the email and the client IP (revops.adapters): 5 wrong passwords for one account
    # from one address in 5 minutes lock that pair only; 60 a minute from one address any.
    "login_failed": env.str("LOGIN_FAILED_RATE_LIMIT", default="60/m/ip,5/5m/key"),
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "revops"
# Roles that may not use the product until they have a second factor.
REVOPS_MFA_REQUIRED_ROLES = env.list("MFA_REQUIRED_ROLES", default=["finance", "admin"])
# SSO (revops/sso/): providers are IdentityProvider rows; allauth never signs anyone up, and
# an IdP's second-factor claim (amr/acr, SAML AuthnContext) stands in for TOTP for that session.
SOCIALACCOUNT_ADAPTER = "revops.sso.adapter.SocialAccountAdapter"
MFA_ADAPTER = "revops.sso.adapter.MfaAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = 10  # seconds for each call to an IdP (discovery, token, userinfo)

# --- Internationalization: storage is UTC ------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Dates render as ISO 8601 (2026-11-20) on every page; see revops/formats/.
FORMAT_MODULE_PATH = ["revops.formats"]

# --- Static files (vendored, served by WhiteNoise) -----------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / ".run" / "media")

# --- Security (secure unless DEBUG is on; each can be overridden) --------------------
CSRF_FAILURE_VIEW = "revops.views.pages.csrf_failure"
SESSION_ENGINE = "revops.sessions"  # database sessions; see revops/sessions.py
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# /health is polled by monitors over plain HTTP inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health$"]
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 12)

# --- Usage ---------------------------------------------------------------------------
# Raw events are kept this many days (whole monthly partitions are dropped after it);
# rollups are kept forever. The API refuses events older than this.
USAGE_RAW_RETENTION_DAYS = env.int("USAGE_RAW_RETENTION_DAYS", default=35)
# Shards the nightly forecasts fan out to: one per worker process across every worker host
# (docs/scaling.md). Each is one task; more shards than processes only queue.
FORECAST_SHARDS = env.int("FORECAST_SHARDS", default=2)
# Seconds between a rollup change and the metrics refresh it triggers (changes in between share it).
METRICS_REFRESH_DELAY_S = env.int("METRICS_REFRESH_DELAY_S", default=60)
# Import jobs (usage/ingestion/jobs.py): the worker running a job beats this often; a
# running job without a beat for the stale limit lost its worker and is run again; a queued
# job whose task has not started after the resend limit is sent again by the sweep.
USAGE_IMPORT_HEARTBEAT_S = env.int("USAGE_IMPORT_HEARTBEAT_S", default=30)
USAGE_IMPORT_STALE_AFTER_S = env.int("USAGE_IMPORT_STALE_AFTER_S", default=3 * 60)
USAGE_IMPORT_QUEUED_RESEND_AFTER_S = env.int("USAGE_IMPORT_QUEUED_RESEND_AFTER_S", default=60)
if USAGE_IMPORT_HEARTBEAT_S >= USAGE_IMPORT_STALE_AFTER_S:
    raise ImproperlyConfigured("USAGE_IMPORT_HEARTBEAT_S must be shorter than USAGE_IMPORT_STALE_AFTER_S.")
# A batch of 5,000 events with properties fits; larger bodies get 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)

# --- Email ----------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="revops <revops@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The site's public address: links in digest emails and Slack posts start with it.
SITE_URL = env.str("SITE_URL", default="http://localhost:8000").rstrip("/")

# --- Celery ---------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
# A task is redelivered after visibility_timeout: it must outlast the hard limit, or a
# long task would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 2}
CELERY_BEAT_SCHEDULE_FILENAME = str(RUN_DIR / "celery" / "beat-schedule")

# --- Logging --------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"client_errors_on_one_line": {"()": "revops.logging.ClientErrorsOnOneLine"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["client_errors_on_one_line"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Everything reaches the one console handler above, once: not also Django's own
        # DEBUG-only console handler (which would print every traceback a second time).
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "pgserver": {"level": "WARNING"},
    },
}

# CRM connections (integrations/): the Fernet key for stored credentials (derived from
# SECRET_KEY when unset), and the backoff on rate limits.
REVOPS_FIELD_KEY = env.str("REVOPS_FIELD_KEY", default="")
CRM_RETRY_MAX = env.int("CRM_RETRY_MAX", default=8)
CRM_RETRY_BASE_S = env.float("CRM_RETRY_BASE_S", default=1.0)
CRM_RETRY_CAP_S = env.float("CRM_RETRY_CAP_S", default=60.0)

# Webhooks out (webhooks/): endpoints on private or loopback addresses are refused unless
# this is on (the tests' local receiver; an on-premises install posting inside its network).
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)
