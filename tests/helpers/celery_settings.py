"""Settings for the Celery worker and beat that a test starts as processes of their own
(tests/helpers/broker.py): the test settings, on the database pytest made for the run
(TEST_DATABASE_NAME), with the broker (TEST_CELERY_BROKER_URL) and Stripe (STRIPE_SECRET_KEY,
STRIPE_API_BASE) that the test passes in their environment."""

from config.settings.test import *  # noqa: F403
from config.settings.test import DATABASES, env

DATABASES["default"]["NAME"] = DATABASES["default"]["TEST"]["NAME"]
STRIPE_SECRET_KEY = env("STRIPE_SECRET_KEY", default="")
STRIPE_TEST_SECRET_KEY = STRIPE_SECRET_KEY
