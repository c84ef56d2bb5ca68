"""Nano Studio settings: one file, read from the environment and `.env` (see .env.example).

With no environment set the project runs in *embedded mode* (SQLite, a local-folder Celery
broker, file cache) with DEBUG on. Setting DATABASE_URL and REDIS_URL switches to *production
mode* (PostgreSQL, Redis broker, Redis cache and rate limiter), where DEBUG is off unless set.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv
from kombu import Queue

from nanostudio.env import env_bool, env_int, env_list, env_str

# Lets generic classes be subscripted at run time too (ModelAdmin[Job]), as the stubs type them.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent
TESTING = "pytest" in sys.modules or env_bool("TESTING", False)
# The one place that reads .env (or ENV_FILE), for every process: make run, manage.py, web,
# worker and beat. The environment wins over the file; tests never read it (their runner sets
# what they use).
if not TESTING:
    load_dotenv(env_str("ENV_FILE", str(BASE_DIR / ".env")), override=False)
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
PRODUCTION_MODE = bool(DATABASE_URL and REDIS_URL)
if bool(DATABASE_URL) != bool(REDIS_URL):
    raise ImproperlyConfigured("Set both DATABASE_URL and REDIS_URL (production mode) or neither")
# Redis by role, each REDIS_URL unless set: the Celery broker (and task results); the cache
# (and the sessions it holds); the rate limiter, the job waiters and the provider slots; the
# usage events waiting to be moved to PostgreSQL (usage.stream). A cache may be flushed or evict
# keys under memory pressure; the limiter's must not be evicted, and the usage events' Redis
# must also keep them on disk (`manage.py check --deploy` says what it lacks).
REDIS_BROKER_URL = env_str("REDIS_BROKER_URL", REDIS_URL)
REDIS_CACHE_URL = env_str("REDIS_CACHE_URL", REDIS_URL)
REDIS_LIMITER_URL = env_str("REDIS_LIMITER_URL", REDIS_URL)
REDIS_USAGE_URL = env_str("REDIS_USAGE_URL", REDIS_URL)

# Embedded mode is for one machine, usually a developer's: DEBUG is on there unless set.
DEBUG = env_bool("DEBUG", not PRODUCTION_MODE)

SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-development-key-" + "x" * 40

# Pepper for API-key digests: deliberately separate from SECRET_KEY so that rotating one
# does not silently invalidate (or expose) the other.
API_KEY_PEPPER = env_str("API_KEY_PEPPER")
if not API_KEY_PEPPER:
    if not (DEBUG or TESTING):
        raise ImproperlyConfigured("API_KEY_PEPPER must be set when DEBUG is off")
    API_KEY_PEPPER = "insecure-development-pepper"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
TRUST_X_FORWARDED_FOR = env_bool("TRUST_X_FORWARDED_FOR", False)

INSTALLED_APPS = [
    "accounts",
    "audit",
    "apikeys",
    "billing",
    "usage",
    "studio",
    "webhooks",
    "docs",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # Django's widget templates, for FORM_RENDERER below
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_htmx",
    "template_partials",
    "csp",
    "ninja",
]

MIDDLEWARE = [
    "nanostudio.metrics.MetricsMiddleware",
    "nanostudio.middleware.RequestIdMiddleware",
    "usage.middleware.UsageMiddleware",  # outside ApiMiddleware: it sees the final answer
    "nanostudio.middleware.ApiMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.ActorMiddleware",  # who acts, for the audit log (after auth)
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "nanostudio.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "nanostudio.urls"
WSGI_APPLICATION = "nanostudio.wsgi.application"
ASGI_APPLICATION = "nanostudio.asgi.application"

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
                "nanostudio.context_processors.site",
            ],
        },
    }
]

# Forms render through the engine above, so templates/django/forms/ can override a widget's
# template (the select's, for speed).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"

# --- Database and cache: embedded (SQLite, files) or production (PostgreSQL, Redis) ---------

if PRODUCTION_MODE:
    # No per-request health check: it costs a round trip on every API call. After a database
    # restart each worker's first request fails once and the connection is replaced.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
    # Server-side binding: psycopg prepares a statement after 5 uses on a connection, so the
    # hot queries (the API-key lookup, the usage charts) skip parsing and planning, which
    # here cost more than running them. Behind PgBouncer in transaction mode this needs
    # PgBouncer >= 1.21 with max_prepared_statements set, or session pooling.
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
    # Bounded connections (docs/deploy.md has the sizing formula): with DB_POOL_MAX, each
    # process shares at most that many connections among its threads (Django's psycopg
    # pool); a thread that waits DB_POOL_TIMEOUT_S for one gets 503 SERVICE_UNAVAILABLE.
    # Unset: each thread keeps its own connection for 60 s.
    DB_POOL_MAX = env_int("DB_POOL_MAX", 0)
    if DB_POOL_MAX:
        DATABASES["default"]["CONN_MAX_AGE"] = 0  # the pool keeps them instead
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": min(env_int("DB_POOL_MIN", 1), DB_POOL_MAX),
            "max_size": DB_POOL_MAX,
            "timeout": env_int("DB_POOL_TIMEOUT_S", 5),
        }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_CACHE_URL,
            "KEY_PREFIX": "nanostudio",
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(VAR_DIR / "nanostudio.sqlite3")),
            # Web, worker and beat share one file: wait for locks instead of failing at once.
            "OPTIONS": {"timeout": 20, "transaction_mode": "IMMEDIATE"},
            # A file, not memory, so that a worker process started by a test sees the test DB.
            "TEST": {"NAME": env_str("SQLITE_PATH", str(VAR_DIR / "test.sqlite3"))},
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Django's own advice for test runs: PBKDF2's 1,000,000 rounds cost 0.46 s a password
    # here, paid for every user a test makes and every login, which added minutes to the suite.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
AUTHENTICATION_BACKENDS = [
    "accounts.backends.ModelBackend",
    "accounts.backends.AuthenticationBackend",
]

# --- Accounts (django-allauth) -------------------------------------------------------------

ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
# The verification link signs the newcomer in when it is opened in the browser that signed up.
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Nano Studio] "
ACCOUNT_RATE_LIMITS_ENABLED = env_bool("ACCOUNT_RATE_LIMITS_ENABLED", True)
if not ACCOUNT_RATE_LIMITS_ENABLED:
    ACCOUNT_RATE_LIMITS = False
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Nano Studio"
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "accounts:dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "home"

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "accounts.mail.DevMailboxBackend"
    if (DEBUG or TESTING)
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT_S", 10)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Nano Studio <no-reply@nanostudio.local>")
DEV_MAILBOX_DIR = VAR_DIR / "mailbox"

# --- Internationalisation, static files ---------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"  # collectstatic's output (make run, deploys)
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # The manifest (hashed names, far-future caching) needs collectstatic, which
        # `make run` and the deploy steps do; development and tests serve files as they are.
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not (DEBUG or TESTING)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
# Request bodies: base64 images make JSON large, but not unbounded.
API_MAX_BODY_BYTES = env_int("API_MAX_BODY_BYTES", 10 * 1024 * 1024)
# Calls whose key is missing or refused, per client address (slows key guessing); also the burst.
API_KEYLESS_RATE_PER_MINUTE = env_int("API_KEYLESS_RATE_PER_MINUTE", 60)
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
# Job files (studio.storage): an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2) when
# AWS_STORAGE_BUCKET_NAME is set, which several machines need; else the folder MEDIA_ROOT.
# Downloads redirect to a URL signed for JOB_FILE_URL_EXPIRE_S.
JOB_FILE_URL_EXPIRE_S = env_int("JOB_FILE_URL_EXPIRE_S", 300)
AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
AWS_S3_PUBLIC_ENDPOINT_URL = env_str("AWS_S3_PUBLIC_ENDPOINT_URL")  # where clients reach it
if AWS_STORAGE_BUCKET_NAME:
    # django-storages reads these; empty ones fall back to boto3's own chain (IAM roles).
    AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
    AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
    AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID") or None
    AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY") or None
    AWS_S3_ADDRESSING_STYLE = env_str("AWS_S3_ADDRESSING_STYLE") or None  # "path": MinIO
    AWS_S3_SIGNATURE_VERSION = "s3v4"
    AWS_DEFAULT_ACL = None  # private objects: read only through signed URLs
    AWS_S3_FILE_OVERWRITE = True  # a job's names are its own
    AWS_QUERYSTRING_EXPIRE = JOB_FILE_URL_EXPIRE_S
    STORAGES["jobs"] = {"BACKEND": "storages.backends.s3.S3Storage"}
else:
    STORAGES["jobs"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"allow_overwrite": True},  # in MEDIA_ROOT
    }

# --- Security ------------------------------------------------------------------------------

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# The API refuses plain HTTP with 403 HTTPS_REQUIRED instead: a redirect would come after the
# key had already crossed the wire in clear text.
SECURE_REDIRECT_EXEMPT = [r"^api/(?!docs|openapi\.json)", r"^healthz$", r"^readyz$", r"^metrics$"]
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if SECURE_SSL_REDIRECT else "http"
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = not DEBUG
# Read from the cache (Redis in production) and written through to the database: a page
# skips a database round trip, and a cache restart logs nobody out.
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Flash messages ("Key created", …) are kept in that session. Django's default, a signed cookie
# with the session behind it, builds a cookie signer on every request, API calls included:
# 2 % of a profile call's instructions (make bench ARGS=instructions).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# The Studio shows job images through redirects to signed bucket URLs: pages may load them.
_bucket_url = AWS_S3_PUBLIC_ENDPOINT_URL or (AWS_STORAGE_BUCKET_NAME and AWS_S3_ENDPOINT_URL)
if _bucket_url:
    _parts = urlsplit(_bucket_url)
    JOB_FILES_ORIGINS = [f"{_parts.scheme}://{_parts.netloc}"]
else:
    JOB_FILES_ORIGINS = ["https://*.amazonaws.com"] if AWS_STORAGE_BUCKET_NAME else []

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:", *JOB_FILES_ORIGINS],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Jobs and engines -------------------------------------------------------------------

JOB_WAIT_S = env_int("JOB_WAIT_S", 30)  # how long POST /api/generate and /api/ocr wait
JOB_MAX_ATTEMPTS = 3
# A job still running after this is stopped, failed (TIMEOUT) and refunded; the worker process
# is killed 15 s later if the engine does not stop.
JOB_TIME_LIMIT_S = env_int("JOB_TIME_LIMIT_S", 60)
# Until a user has finished jobs, how long one is expected to take (Retry-After on the job cap).
JOB_TYPICAL_S = env_int("JOB_TYPICAL_S", 5)
# A running job's worker marks it alive every JOB_HEARTBEAT_EVERY_S; one whose mark is older
# than JOB_STALE_RUNNING_S has lost its worker and is retried by beat's sweeper, which runs
# every JOB_SWEEP_EVERY_S: a killed worker's job is back in work within the sum, 25 s.
JOB_HEARTBEAT_EVERY_S = env_int("JOB_HEARTBEAT_EVERY_S", 5)
JOB_STALE_RUNNING_S = env_int("JOB_STALE_RUNNING_S", 15)
JOB_SWEEP_EVERY_S = env_int("JOB_SWEEP_EVERY_S", 10)
# A job still queued this long may have lost its message (a broker restarted empty): send it
# again. A duplicate message costs one no-op claim.
JOB_RESEND_QUEUED_AFTER_S = env_int("JOB_RESEND_QUEUED_AFTER_S", 30)
JOB_OUTPUT_RETENTION_DAYS = env_int("JOB_OUTPUT_RETENTION_DAYS", 7)
# An input image up to this size is kept in the database with its job (studio.JobInput): no
# file is made in the request. A larger one goes to the job files storage.
JOB_INPUT_INLINE_MAX_BYTES = env_int("JOB_INPUT_INLINE_MAX_BYTES", 64 * 1024)
IMAGE_MAX_PIXELS = env_int("IMAGE_MAX_PIXELS", 25_000_000)
IMAGE_MAX_FRAMES = env_int("IMAGE_MAX_FRAMES", 100)  # animated GIF/WebP/PNG; the first is used

# Image-model providers (studio/engines/providers.py). A provider is configured by its key (or,
# for a self-hosted OpenAI-compatible server, its URL). `*_MODELS` lists the models offered as
# `name:credits`, the first being the default. IMAGE_PROVIDER picks the provider for prompts and
# for templates whose engine is "auto"; empty means the first configured of gemini, openai,
# upstream. Each provider gets at most `*_MAX_CONCURRENCY` calls at a time across all workers.
IMAGE_PROVIDER = env_str("IMAGE_PROVIDER")
GEMINI_API_KEY = env_str("GEMINI_API_KEY")
GEMINI_BASE_URL = env_str("GEMINI_BASE_URL", "https://generativelanguage.googleapis.com/v1beta")
GEMINI_MODELS = env_list(
    "GEMINI_MODELS", ["gemini-2.5-flash-image:2", "gemini-3-pro-image-preview:6"]
)
GEMINI_TIMEOUT_S = env_int("GEMINI_TIMEOUT_S", 60)
GEMINI_MAX_CONCURRENCY = env_int("GEMINI_MAX_CONCURRENCY", 4)
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OPENAI_BASE_URL = env_str("OPENAI_BASE_URL", "https://api.openai.com/v1")
OPENAI_IMAGE_MODELS = env_list("OPENAI_IMAGE_MODELS", ["gpt-image-1:4", "gpt-image-1-mini:2"])
OPENAI_TIMEOUT_S = env_int("OPENAI_TIMEOUT_S", 120)
OPENAI_MAX_CONCURRENCY = env_int("OPENAI_MAX_CONCURRENCY", 4)
UPSTREAM_IMAGES_URL = env_str("UPSTREAM_IMAGES_URL")  # e.g. http://gpu-box:8080/v1
UPSTREAM_API_KEY = env_str("UPSTREAM_API_KEY")
UPSTREAM_MODELS = env_list("UPSTREAM_MODELS", [env_str("UPSTREAM_MODEL", "gpt-image-1") + ":2"])
UPSTREAM_TIMEOUT_S = env_int("UPSTREAM_TIMEOUT_S", 60)
UPSTREAM_MAX_CONCURRENCY = env_int("UPSTREAM_MAX_CONCURRENCY", 4)

# --- Webhooks and notices (webhooks/) ---------------------------------------------------

# The site's public address, for links in webhook payloads and notice emails.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
# Development and tests only: webhooks may reach 127.0.0.0/8 and ::1 (and over plain http).
WEBHOOK_ALLOW_LOOPBACK = env_bool("WEBHOOK_ALLOW_LOOPBACK", DEBUG)
WEBHOOK_TIMEOUT_S = env_int("WEBHOOK_TIMEOUT_S", 10)
# Waits after attempts 1..7 (8 attempts over about a day), each ±20 % jitter.
WEBHOOK_RETRY_SCHEDULE_S = [
    int(s)
    for s in env_list(
        "WEBHOOK_RETRY_SCHEDULE_S", ["5", "300", "1800", "7200", "18000", "28800", "28800"]
    )
]
WEBHOOK_DISABLE_AFTER_S = env_int("WEBHOOK_DISABLE_AFTER_S", 3 * 86400)
WEBHOOK_IN_FLIGHT_PER_ENDPOINT = env_int("WEBHOOK_IN_FLIGHT_PER_ENDPOINT", 2)
WEBHOOK_DELIVERY_RETENTION_DAYS = env_int("WEBHOOK_DELIVERY_RETENTION_DAYS", 30)
# A Fernet key for signing secrets at rest; empty: derived from SECRET_KEY.
WEBHOOK_SECRETS_KEY = env_str("WEBHOOK_SECRETS_KEY")

# --- Usage metering ------------------------------------------------------------------------

USAGE_RETENTION_DAYS = env_int("USAGE_RETENTION_DAYS", 90)  # raw events; daily rollups stay
# The Redis stream the events of answered requests wait in (usage.stream), and how often
# `manage.py move_usage_events` moves them to PostgreSQL.
USAGE_STREAM = "usage:events"
USAGE_MOVE_EVERY_MS = env_int("USAGE_MOVE_EVERY_MS", 200)

# --- Celery ----------------------------------------------------------------------------------

if PRODUCTION_MODE:
    CELERY_BROKER_URL = REDIS_BROKER_URL
    CELERY_RESULT_BACKEND = REDIS_BROKER_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": 3600}
    if REDIS_BROKER_URL.startswith("redis://"):
        CELERY_BROKER_TRANSPORT = "nanostudio.broker:Transport"  # one client per channel
else:
    BROKER_DIR = Path(env_str("CELERY_BROKER_DIR", str(VAR_DIR / "broker")))
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # How often a worker looks for new messages (kombu's default is 1 s): a job or a
        # webhook waits at most this long for a free worker to see it.
        "polling_interval": 0.1,
    }
    CELERY_RESULT_BACKEND = f"file://{VAR_DIR / 'results'}"

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
# A task running when the broker drops goes on to the end (its result is in the database; a
# redelivery of its message is a no-op claim) instead of being cancelled mid-job.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fix-up closes the database connection before and after every task unless
# this is set (then it closes every Nth). A new connection cost each job ~5 ms and its prepared
# statements; nanostudio.celery closes them as Django does around a request instead
# (past CONN_MAX_AGE, or after an error left them unusable).
CELERY_DB_REUSE_MAX = 1_000_000
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT_S", 120)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT_S", 90)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # keep our logfmt lines
# Celery's own defaults, set here because it reads them on every task sent: one that Django's
# settings lack costs an AttributeError on each read (13 µs against 4 µs for one they have).
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_SEND_SENT_EVENT = False
CELERY_TASK_REPR_MAXLEVELS = 3
CELERY_BROKER_POOL_ACQUIRE_TIMEOUT = None
CELERY_BEAT_SCHEDULE: dict[str, Any] = {
    # Both are idempotent; hourly means an allowance arrives within the hour of the billing
    # day starting (a reservation that finds the new period ungranted grants it at once).
    "grant-due-allowances": {"task": "billing.grant_due_allowances", "schedule": 3600},
    "expire-topups": {"task": "billing.expire_topups", "schedule": 3600},
    "sweep-jobs": {"task": "studio.sweep_jobs", "schedule": JOB_SWEEP_EVERY_S},
    "purge-old-outputs": {"task": "studio.purge_old_outputs", "schedule": 3600},
    # Charts read rollups plus the events not yet folded in, so they are exact either way;
    # folding often keeps that second part to the last half-minute of events.
    "roll-up-usage": {"task": "usage.roll_up", "schedule": 30},
    "prune-usage-events": {"task": "usage.prune_events", "schedule": 3600},
    "dispatch-webhooks": {"task": "webhooks.dispatch_due", "schedule": 2},
    "check-keys-expiring": {"task": "webhooks.check_keys_expiring", "schedule": 3600},
    "purge-old-deliveries": {"task": "webhooks.purge_old", "schedule": 3600},
}
# Queues by kind of work, each with its own workers (Procfile, compose.yaml): jobs on
# `images` and `ocr` (CPU, prefork) or `upstream` (provider calls, threads) as Job.queue
# decides at enqueue; the periodic work on `maintenance`, so a backlog of jobs never delays
# roll-ups and sweeps; webhook deliveries and notice emails, which wait on other people's
# servers, on `webhooks` (threads). Anything else (the ping) on Celery's default `celery`.
JOB_QUEUES = ("images", "ocr", "upstream")
# Declared, so that `celery purge` and app.control.purge() reach them all.
CELERY_TASK_QUEUES = [Queue(name) for name in ("celery", *JOB_QUEUES, "maintenance", "webhooks")]
CELERY_TASK_ROUTES = {
    "studio.run_job": {"queue": "images"},  # enqueue() names the job's queue
    "studio.sweep_jobs": {"queue": "maintenance"},
    "studio.purge_old_outputs": {"queue": "maintenance"},
    "usage.*": {"queue": "maintenance"},
    "billing.*": {"queue": "maintenance"},
    "webhooks.*": {"queue": "webhooks"},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# Folders the settings point into, made by the entry points (nanostudio.dirs), not here.
VAR_FOLDERS = [VAR_DIR, STATIC_ROOT]
if not PRODUCTION_MODE:
    VAR_FOLDERS += [BROKER_DIR / sub for sub in ("queue", "processed", "control")]
    VAR_FOLDERS.append(VAR_DIR / "results")

# --- Errors to Sentry --------------------------------------------------------------------------

# /metrics (Prometheus) answers only with this bearer token; unset, it is off (404). Web and
# workers write their numbers under PROMETHEUS_MULTIPROC_DIR when it is set (many processes).
METRICS_TOKEN = env_str("METRICS_TOKEN")
SENTRY_DSN = env_str("SENTRY_DSN")
if SENTRY_DSN:
    from nanostudio.observability import start_sentry

    start_sentry(
        SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        traces_sample_rate=float(env_str("SENTRY_TRACES_SAMPLE_RATE", "0") or 0),
    )

# --- Logging: logfmt on stdout, one line per event -------------------------------------------

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOG_FORMAT = env_str("LOG_FORMAT", "logfmt")  # or json
if LOG_FORMAT not in ("logfmt", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT={LOG_FORMAT!r}: use logfmt or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "nanostudio.logging.RequestIdFilter"}},
    "formatters": {
        "logfmt": {"()": "nanostudio.logging.LogfmtFormatter"},
        "json": {"()": "nanostudio.logging.JsonFormatter"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT,
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "django.server": {"level": "WARNING"},
        # 4xx answers are the client's business (and recorded as usage), not warnings.
        "django.request": {"level": "ERROR"},
    },
}
