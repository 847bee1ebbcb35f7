"""Developer machine: `make run`. Safe defaults so a fresh clone works with no `.env`."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="local-dev-only-not-a-secret")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
# A fixed development key, so encrypted rows survive restarts of `make run`.
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["nK1c2s8yQnXhKk7y7Bj5A0o1c1f0m8nq8v3H9bX2yCw="]
)
