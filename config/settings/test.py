"""What pytest uses. Real PostgreSQL and Redis; providers are emulators on 127.0.0.1."""

from .base import *  # noqa: F403
from .base import (
    DATABASE_REPLICA_URL,
    LOGGING,
    env,
    replica_database,
    transport_options,
)

DEBUG = False
SECRET_KEY = "test-only-not-a-secret"  # noqa: S105
ALLOWED_HOSTS = ["*"]
DATABASES = {
    "default": env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/billing"),
}
# TEST_DATABASE_NAME lets two suites (a CI clone and a working copy) run side by side.
DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_billing")}
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = replica_database(DATABASE_REPLICA_URL, DATABASES["default"])
# A database number of its own, so tests never touch the queues of a running `make run`.
REDIS_URL = env("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15")
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
# A test that runs Celery against RabbitMQ passes its broker here (tests/helpers/broker.py).
CELERY_BROKER_URL = env("TEST_CELERY_BROKER_URL", default=REDIS_URL)
CELERY_BROKER_TRANSPORT_OPTIONS = transport_options(CELERY_BROKER_URL, visibility_timeout=3600)
FIELD_ENCRYPTION_KEYS = ["3q2-7wEjbq7jJ9Yq0mR1vC8cN6v4H5bT2kLx9sWz0aE="]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Providers stay disabled unless a test's fixture points them at an emulator.
STRIPE_SECRET_KEY = ""
STRIPE_TEST_SECRET_KEY = ""
LAGO_API_URL = ""
LAGO_API_KEY = ""
LOG_FORMAT = "json"
LOGGING = {**LOGGING, "root": {"handlers": ["stdout"], "level": "WARNING"}}
