import os
import sys

from celery import Celery

# No fallback: a worker or beat started without DJANGO_SETTINGS_MODULE must not run on
# local settings (DEBUG on, a committed key). The image sets config.settings.production;
# manage.py sets its developer default before this module is imported.
if not os.environ.get("DJANGO_SETTINGS_MODULE"):
    sys.exit(
        "DJANGO_SETTINGS_MODULE is not set; refusing to start. "
        "Set it (config.settings.production in the image) before starting Celery."
    )

app = Celery("billing")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
