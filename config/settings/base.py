"""Settings shared by every environment. Values come from the environment only."""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from core.broker import transport_options

BASE_DIR = Path(__file__).resolve().parent.parent.parent


class _Env(environ.Env):
    def list(self, var, cast=None, default=environ.Env.NOTSET):
        # "a, b" must mean ["a", "b"]: stray spaces in hosts or keys are silent breakage.
        values = super().list(var, cast=cast, default=default)
        return [v.strip() if isinstance(v, str) else v for v in values if str(v).strip()]


env = _Env()
# A local `.env` is a convenience for `make run`; production reads real variables only.
if not os.environ.get("DJANGO_SETTINGS_MODULE", "").endswith(".production"):
    environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "drf_standardized_errors",
    "django_celery_beat",
    "djstripe",
    "pgtrigger",
    "pghistory",
    "pghistory.admin",
    "axes",
    "core",
    # Lowest layer first (README, "Architecture"); `billing` keeps the pre-split history.
    "billing",
    "billing.sync",
    "customers",
    "subscriptions",
    "billing.usage",
    "billing.coupons",
    "billing.wallets",
    "billing.invoicing",
    "billing.payments",
    "webhooks",
    # Last: its post_migrate gives the staff roles their permissions once every app's
    # permissions exist.
    "backoffice",
]

MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    # Refuses oversized bodies and NUL in the URL before anything reads them (a 4xx, not a 500).
    "core.middleware.BadRequestGuardMiddleware",
    # Before host validation, so probes answer whatever Host header they send.
    "core.health.HealthCheckMiddleware",
    "core.metrics.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.audit.AuditContextMiddleware",
    # Provider calls inside a request: short timeout, no retries (a hung provider is a 503).
    "billing.providers.inline.InlineProviderCallsMiddleware",
    # Last, as django-axes requires: answers a locked-out login with 429.
    "axes.middleware.AxesMiddleware",
]

# Brute-force protection of the admin login (django-axes): AXES_FAILURE_LIMIT wrong
# passwords for one username from one address lock that pair out for AXES_COOLOFF_HOURS
# (the right password included); other staff, and the same user elsewhere, can still log
# in. Attempts are kept in the database (Admin → Axes), so a Redis flush or outage does
# not reset them; `manage.py axes_reset_username NAME` lifts a lockout early.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(hours=env.float("AXES_COOLOFF_HOURS", default=1.0))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True

# The largest body read (413 above it): a full usage batch (1,000 events) with generous
# properties fits with room to spare; Django's default, 2.5 MB, is close to that.
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
            ],
        },
    },
]


def replica_database(url: str, primary: dict) -> dict:
    """A read replica's settings: its own address, the primary's connection habits; in
    tests, a mirror of the primary's test database."""
    replica = environ.Env.db_url_config(url)
    replica["CONN_MAX_AGE"] = primary.get("CONN_MAX_AGE", 0)
    replica["CONN_HEALTH_CHECKS"] = True
    replica.setdefault("OPTIONS", {})["connect_timeout"] = 5
    replica["TEST"] = {"MIRROR": "default"}
    return replica


DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/billing"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
# A read replica for the reports (core/replica.py): the dashboard and CSV exports read it,
# everything else the primary. Unset: everything reads the primary.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
DATABASE_ROUTERS = ["core.replica.ReplicaRouter"]
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = replica_database(DATABASE_REPLICA_URL, DATABASES["default"])
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
            # The cache is an optimisation: an outage degrades, it never fails a request.
            "IGNORE_EXCEPTIONS": True,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "core.cache"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["core.auth.HasApiKey"],
    "DEFAULT_RENDERER_CLASSES": ["core.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.CursorPagination",
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "EXCEPTION_HANDLER": "drf_standardized_errors.handler.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # Per API key (core/throttling.py), at API_THROTTLE_RATE below.
    "DEFAULT_THROTTLE_CLASSES": ["core.throttling.ApiKeyRateThrottle"],
    "COERCE_DECIMAL_TO_STRING": True,
}
DRF_STANDARDIZED_ERRORS = {
    "ENABLE_IN_DEBUG_FOR_UNHANDLED_EXCEPTIONS": True,
    "EXCEPTION_HANDLER_CLASS": "core.errors.ExceptionHandler",
    "EXCEPTION_FORMATTER_CLASS": "core.errors.ExceptionFormatter",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Billing service API",
    "DESCRIPTION": """Customers, payment methods, plans, subscriptions, usage and invoices.

- **Authentication**: `Authorization: Bearer <api key>` on every request. A read-only key
  may only read: a write answers 403.
- **Errors** have one shape (`Error`): `{"type", "errors": [{"code", "detail", "attr"}]}`.
  Branch on `code`; `attr` names the field at fault; `detail` is for people. Each
  operation lists the codes it may answer under each status.
- **Idempotency**: every POST takes an `Idempotency-Key` header; a retry with the same key
  and body replays the first answer instead of acting twice.
- **Lists** are cursor paginated, newest first: follow `next` (`?page_size=` up to 500,
  default 50).
- **Money** is in integer minor units (`*_amount_cents`, `amount_cents`) with an ISO 4217
  `currency`; unit prices and rates are decimal strings, never floats.
- **Addresses**: customers and subscriptions by your own `external_id`, plans and billable
  metrics by `code`, invoices and payment methods by `id`.
- **Providers**: Stripe (payments) and Lago (usage-based billing) are kept in step in the
  background; an object's `sync` block says how far that got. The few operations that
  wait for a provider say so, and answer 503 when it is unavailable.""",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Docstrings are notes for developers: descriptions come from extend_schema only.
    "DISABLE_DOCSTRING_DESCRIPTIONS": True,
    # One group per resource (core/schema.py documents what every operation answers).
    "TAGS": [
        {"name": "Customers", "description": "The customers you bill, by your `external_id`."},
        {
            "name": "Payment methods",
            "description": "Customers' cards: collected by Stripe.js (card data never "
            "reaches this service), attached in Stripe, one of them the default that "
            "invoices are charged to. These operations call Stripe while you wait.",
        },
        {
            "name": "Billable metrics",
            "description": "How usage events become units: count, sum, max, unique count or "
            "latest value of an event property.",
        },
        {
            "name": "Plans",
            "description": "What a subscription pays: a fixed fee per interval and a charge "
            "per billable metric. A plan in use cannot be re-priced.",
        },
        {
            "name": "Subscriptions",
            "description": "A customer on a plan, and its state machine: pending, active "
            "(possibly canceling at the period end), canceled, terminated.",
        },
        {
            "name": "Usage",
            "description": "Usage events, recorded exactly once per `transaction_id`, and "
            "what a subscription's usage costs so far.",
        },
        {
            "name": "Invoices",
            "description": "Invoices of closed billing periods: generated, finalized and "
            "collected by the billing run on their own, or sooner on request.",
        },
        {
            "name": "Credit notes",
            "description": "Corrections of issued invoices: credited per line or whole, "
            "refunded to the card, credited to the customer's balance or offset.",
        },
        {
            "name": "Add-ons",
            "description": "One-off charges (setup fees, support hours), billed on "
            "one-off invoices.",
        },
        {
            "name": "Wallets",
            "description": "Prepaid credits: granted or bought, taken off invoices "
            "before the card is charged.",
        },
        {
            "name": "Coupons",
            "description": "Discounts taken off invoices before tax, and the customers "
            "they are applied to.",
        },
        {"name": "API index", "description": "The resources of this API version."},
    ],
    "ENUM_NAME_OVERRIDES": {
        "ErrorTypeEnum": ["validation_error", "client_error", "server_error"],
        # Several models have a `status`: each enum gets its own name.
        "InvoiceStatusEnum": "billing.invoicing.models.Invoice.Status",
        "InvoicePaymentStatusEnum": "billing.invoicing.models.Invoice.PaymentStatus",
        "PaymentAttemptStatusEnum": "billing.payments.models.PaymentAttempt.Status",
        "CreditNoteStatusEnum": "billing.invoicing.models.CreditNote.Status",
        # Coupons, applied coupons and wallets: active or terminated.
        "ActiveOrTerminatedEnum": "billing.coupons.models.Coupon.Status",
    },
}
IDEMPOTENCY_KEY_TTL_HOURS = 24
# A claim older than this belongs to a request that died; a retry may take it over.
IDEMPOTENCY_LOCK_TIMEOUT_SECONDS = env.int("IDEMPOTENCY_LOCK_TIMEOUT_SECONDS", default=120)
# Requests per API key ("N/second", "N/minute", "N/hour"; "off" disables): a ceiling
# against a runaway caller, high enough that no normal service (nor the benchmarks) meets it.
API_THROTTLE_RATE = env("API_THROTTLE_RATE", default="60000/minute")
# Requests under these paths change no audited table (usage events, their dedupe rows, the
# forwarding queue, stored webhooks: tests/usage/test_usage_audit.py holds them to it), so
# core.audit gives them no pghistory context. A webhook's effects are applied by a worker.
AUDIT_UNTRACKED_PATHS = ("/api/v1/usage/", "/webhooks/")
# How long a process keeps an API key it has read (core/auth.py): a revoked key may still
# be taken for this long by the processes that did not revoke it. 0 reads it every time.
API_KEY_CACHE_SECONDS = env.int("API_KEY_CACHE_SECONDS", default=10)

# --- Celery ----------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Our tasks are safe to run twice, so a lost connection may hand them to another worker.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TIMEZONE = "UTC"
# Workers log through Django's LOGGING (JSON, with the request id), not Celery's format.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Publishing must fail fast when the broker is down: the outbox row is already committed
# and the sweeper re-enqueues it, so a request never waits on (or fails with) the broker.
# But one immediate retry, which makes a new connection: a RabbitMQ connection that a
# broker restart closed stays closed (Redis's client reconnects by itself), and without
# it every later publish, beat's included, failed until the process was restarted.
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0,
    "interval_max": 0,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# A worker that loses the broker reconnects (2, 4, 6 ... s apart, then every 30 s) for as
# long as the broker is away, rather than exiting after 100 tries; so does one that starts
# before the broker. See README "Operations", broker restarts.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis or RabbitMQ (core/broker.py; README "Choosing a broker"): the options follow the
# URL's scheme, and any other scheme stops the process here.
CELERY_BROKER_TRANSPORT_OPTIONS = transport_options(CELERY_BROKER_URL, visibility_timeout=3600)
# RabbitMQ closes a consumer that holds a message unacknowledged for consumer_timeout (30
# min by default), and a worker holds a countdown task so until it is due: no countdown
# is longer than this (core/publish.py). Must stay well under both that and Redis's
# visibility_timeout above.
TASK_MAX_COUNTDOWN_SECONDS = env.int("TASK_MAX_COUNTDOWN_SECONDS", default=900)
if not 0 < TASK_MAX_COUNTDOWN_SECONDS < 1800:
    raise ImproperlyConfigured("TASK_MAX_COUNTDOWN_SECONDS must be between 1 and 1799")
# After a failed publish, a process leaves publishing to the sweepers for this long.
PUBLISH_PAUSE_SECONDS = env.float("PUBLISH_PAUSE_SECONDS", default=30.0)
# How often beat sweeps each retry queue (core.queue); OUTBOX_SWEEP_SECONDS, its former
# name, is still read.
QUEUE_SWEEP_SECONDS = env.int(
    "QUEUE_SWEEP_SECONDS", default=env.int("OUTBOX_SWEEP_SECONDS", default=30)
)
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {
        "task": "billing.sync.tasks.outbox_sweep",
        "schedule": QUEUE_SWEEP_SECONDS,
    },
    "webhook-sweep": {
        "task": "webhooks.tasks.webhook_sweep",
        "schedule": QUEUE_SWEEP_SECONDS,
    },
    "usage-forwarding-sweep": {
        "task": "billing.usage.tasks.usage_forwarding_sweep",
        "schedule": QUEUE_SWEEP_SECONDS,
    },
    "subscriptions-advance": {
        "task": "subscriptions.tasks.subscriptions_advance",
        "schedule": env.int("SUBSCRIPTIONS_ADVANCE_SECONDS", default=60),
    },
    "usage-partitions": {
        "task": "billing.usage.tasks.usage_partitions_ensure",
        "schedule": 24 * 3600,
    },
    "wallets-expire": {
        "task": "billing.wallets.tasks.wallets_expire_due",
        "schedule": 3600,
    },
    "billing-run": {
        "task": "billing.invoicing.tasks.billing_run",
        "schedule": env.int("BILLING_RUN_SECONDS", default=300),
    },
    "invoices-collect-due": {
        "task": "billing.payments.tasks.invoices_collect_due",
        "schedule": env.int("COLLECTION_SWEEP_SECONDS", default=300),
    },
    "lago-invoices-pull": {
        "task": "billing.invoicing.tasks.lago_invoices_pull",
        "schedule": env.int("LAGO_INVOICES_PULL_SECONDS", default=900),
    },
    "idempotency-keys-purge": {
        "task": "core.tasks.idempotency_keys_purge",
        "schedule": 3600,
    },
}

# --- Billing and providers -------------------------------------------------------------
BILLING_ENGINE = env("BILLING_ENGINE", default="local")
# Invoices: who issues them (numbers are sequential per issuer), the number's prefix, the
# days until due, and when a failed collection is retried (days after each failure).
INVOICE_ISSUER = env("INVOICE_ISSUER", default="AIP")
INVOICE_NUMBER_PREFIX = env("INVOICE_NUMBER_PREFIX", default="")
INVOICE_ISSUER_NAME = env("INVOICE_ISSUER_NAME", default="AI Platform Inc.")
INVOICE_DUE_DAYS = env.int("INVOICE_DUE_DAYS", default=0)
# Money safeguards: a back-dated subscription may close at most this many past periods
# (and only with bill_past_periods: true), and collection charges one customer at most
# this many times automatically in 24 h; the rest wait for staff.
SUBSCRIPTION_MAX_PAST_PERIODS = env.int("SUBSCRIPTION_MAX_PAST_PERIODS", default=24)
COLLECTION_MAX_CHARGES_PER_CUSTOMER_PER_DAY = env.int(
    "COLLECTION_MAX_CHARGES_PER_CUSTOMER_PER_DAY", default=3
)
DUNNING_SCHEDULE_DAYS = [int(d) for d in env.list("DUNNING_SCHEDULE_DAYS", default=["1", "3", "7"])]
# Minutes after a period ends before the billing run invoices it: late usage still counts.
INVOICE_GRACE_MINUTES = env.int("INVOICE_GRACE_MINUTES", default=60)
# The billing run's page size: what bounds its memory, and how long a page's subscriptions
# stay locked against usage recording (about a second for 500 periods).
BILLING_RUN_BATCH = env.int("BILLING_RUN_BATCH", default=500)
# How many Celery tasks bill the queue at once (pages claimed with SKIP LOCKED): the beat's
# run starts this many, on whichever workers take them.
BILLING_RUN_WORKERS = env.int("BILLING_RUN_WORKERS", default=1)
LAGO_API_URL = env("LAGO_API_URL", default="")
LAGO_API_KEY = env("LAGO_API_KEY", default="")
LAGO_WEBHOOK_HMAC_KEY = env("LAGO_WEBHOOK_HMAC_KEY", default="")
# The `iss` Lago's webhook JWTs must carry (Lago's own LAGO_API_URL); default LAGO_API_URL.
LAGO_WEBHOOK_ISSUER = env("LAGO_WEBHOOK_ISSUER", default="")
LAGO_TIMEOUT_SECONDS = env.float("LAGO_TIMEOUT_SECONDS", default=10.0)
# Calls made while an HTTP request waits (billing.providers.inline): short, no retries.
LAGO_REQUEST_TIMEOUT_SECONDS = env.float("LAGO_REQUEST_TIMEOUT_SECONDS", default=4.0)
LAGO_OPENAPI_SPEC = env(
    "LAGO_OPENAPI_SPEC", default=str(BASE_DIR.parent / "shared/lago/openapi.yaml")
)

STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_WEBHOOK_SECRET = env.list("STRIPE_WEBHOOK_SECRET", default=[])
if any(not secret.startswith("whsec_") for secret in STRIPE_WEBHOOK_SECRET):
    # A stray or truncated entry would be a secret anyone could sign with.
    raise ImproperlyConfigured("every STRIPE_WEBHOOK_SECRET entry must start with whsec_")
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=10.0)
# Calls made while an HTTP request waits (billing.providers.inline): short, no retries.
STRIPE_REQUEST_TIMEOUT_SECONDS = env.float("STRIPE_REQUEST_TIMEOUT_SECONDS", default=4.0)
# The version stripe-python 15 is generated for; dj-stripe 2.11 supports the dahlia line.
STRIPE_API_VERSION = "2026-08-26.dahlia"
# Set only where GET /v1/account does not exist (the emulator): the account to record.
STRIPE_ACCOUNT_ID = env("STRIPE_ACCOUNT_ID", default="")

# dj-stripe mirrors Stripe objects; it reads its key from these names.
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith("sk_live_")
STRIPE_TEST_SECRET_KEY = "" if STRIPE_LIVE_MODE else STRIPE_SECRET_KEY
STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY if STRIPE_LIVE_MODE else ""
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"
DJSTRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET[0] if STRIPE_WEBHOOK_SECRET else ""

# Provider syncs (the outbox, and usage forwarding to Lago) ride out a provider outage of
# a day: delays double from 10 s to a cap of 1 h, each drawn between half and all of its
# ceiling (core.retry). The 59 delays between 60 attempts (10 s ... 2,560 s, then 50 of
# 1 h) add up to 25.7 h at the least and 51.4 h at the most; once the provider is back, a
# sync waits at most an hour. tests/core/test_queue.py checks the 24 h floor.
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=60)
OUTBOX_BACKOFF_BASE_SECONDS = env.float("OUTBOX_BACKOFF_BASE_SECONDS", default=10.0)
OUTBOX_BACKOFF_MAX_SECONDS = env.float("OUTBOX_BACKOFF_MAX_SECONDS", default=3600.0)
# Every retry queue (core.queue): a row left 'processing' this long belongs to a worker
# that died. It must outlast any task (CELERY_TASK_TIME_LIMIT), or a live worker's row
# would be handed to a second one. OUTBOX_STALE_SECONDS, its former name, is still read.
QUEUE_STALE_SECONDS = env.int(
    "QUEUE_STALE_SECONDS", default=env.int("OUTBOX_STALE_SECONDS", default=600)
)
if QUEUE_STALE_SECONDS <= CELERY_TASK_TIME_LIMIT:
    raise ImproperlyConfigured(
        f"QUEUE_STALE_SECONDS must be longer than a task may run ({CELERY_TASK_TIME_LIMIT} s)"
    )
# The sweepers leave a due row alone this long (its task is probably queued), and then
# re-publish it at most this often.
SWEEP_GRACE_SECONDS = env.int("SWEEP_GRACE_SECONDS", default=60)
SWEEP_REPUBLISH_SECONDS = env.int("SWEEP_REPUBLISH_SECONDS", default=300)

# Provider webhooks: a failing handler is retried this often before it is marked failed.
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=6)
WEBHOOK_BACKOFF_BASE_SECONDS = env.float("WEBHOOK_BACKOFF_BASE_SECONDS", default=10.0)
WEBHOOK_BACKOFF_MAX_SECONDS = env.float("WEBHOOK_BACKOFF_MAX_SECONDS", default=3600.0)

# --- Encryption ------------------------------------------------------------------------
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# --- Observability ---------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="json")
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {"()": "core.logging.JsonFormatter"},
        "console": {
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        },
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "console",
            "filters": ["request_id"],
        },
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": LOG_LEVEL},
        # The SDK logs every call at INFO; our provider module logs what matters.
        "stripe": {"level": "WARNING"},
    },
}
