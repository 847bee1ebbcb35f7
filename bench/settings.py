"""Settings of `python -m bench`: the test settings, with a database and Redis db of their own.

The database is created (if absent) and migrated by `python -m bench` itself, so a benchmark
never touches the development database (`billing`) nor the one pytest uses (`test_billing`).
"""

from config.settings.test import *  # noqa: F403
from config.settings.test import DATABASES, LOGGING, env

ROOT_URLCONF = "bench.urls"

DATABASES = {
    "default": {
        **DATABASES["default"],
        "NAME": env("BENCH_DATABASE_NAME", default="bench_billing"),
        # As in production (config.settings.base): a worker keeps its connection between
        # requests. The test settings leave the default 0, a new connection per request,
        # which would mostly measure PostgreSQL's connection set-up.
        "CONN_MAX_AGE": env.int("DATABASE_CONN_MAX_AGE", default=60),
        "CONN_HEALTH_CHECKS": True,
        "TEST": {"NAME": "test_bench_billing"},
    }
}

# A Redis database of its own: 0 is `make run`'s, 15 is pytest's (which flushes it).
REDIS_URL = env("BENCH_REDIS_URL", default="redis://127.0.0.1:6379/14")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "OPTIONS": {
            "SOCKET_CONNECT_TIMEOUT": 1,
            "SOCKET_TIMEOUT": 1,
            "IGNORE_EXCEPTIONS": True,
        },
    }
}
CELERY_BROKER_URL = REDIS_URL

# The secret bench.webhooks signs its Stripe events with (the server verifies them with it).
STRIPE_WEBHOOK_SECRET = [env("BENCH_STRIPE_WEBHOOK_SECRET", default="whsec_bench_not_a_secret")]
DJSTRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET[0]

LOG_LEVEL = "WARNING"
LOGGING = {
    **LOGGING,
    "root": {"handlers": ["stdout"], "level": "WARNING"},
    "loggers": {
        **LOGGING.get("loggers", {}),
        "django.db.backends": {"level": "WARNING"},
        "celery": {"level": "WARNING"},
    },
}
