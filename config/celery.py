import os
import sys

from celery import Celery
from celery.app.amqp import AMQP
from kombu import Connection

# No fallback: a worker or beat started without DJANGO_SETTINGS_MODULE must not run on
# local settings (DEBUG on, a committed key). The image sets config.settings.production;
# manage.py sets its developer default before this module is imported.
if not os.environ.get("DJANGO_SETTINGS_MODULE"):
    sys.exit(
        "DJANGO_SETTINGS_MODULE is not set; refusing to start. "
        "Set it (config.settings.production in the image) before starting Celery."
    )


class BrokerConnection(Connection):
    """kombu's Connection, safe to close after `collect()`.

    When a worker loses the broker, Celery 5.7 first collects the connection (which drops
    its transport) and then closes it. kombu's `collect()` keeps the default channel, so
    the close tried to close that channel again through the dropped transport; with a
    Redis broker and a message in flight (acks late) that raised
    `AttributeError: 'NoneType' object has no attribute 'hostname'`, which Celery takes
    for an unrecoverable error: the worker exited instead of reconnecting. Once collected,
    the channel belongs to a transport that is gone; it is forgotten, not closed again.
    What that channel had not acknowledged is not restored from here (with the broker gone
    it could not be): Redis hands it out again after the visibility timeout, if it kept
    it, and the retry queues' sweepers publish their rows again in any case.
    """

    def collect(self, socket_timeout: float | None = None) -> None:
        try:
            super().collect(socket_timeout=socket_timeout)
        finally:
            self._default_channel = None


class BrokerAMQP(AMQP):
    Connection = BrokerConnection
    BrokerConnection = BrokerConnection


app = Celery("billing", amqp=BrokerAMQP)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
