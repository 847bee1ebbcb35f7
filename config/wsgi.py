import gc
import os
import sys

from django.core.wsgi import get_wsgi_application

# No fallback: a server started without DJANGO_SETTINGS_MODULE must not come up on local
# settings (DEBUG on, a committed key). The image sets config.settings.production.
if not os.environ.get("DJANGO_SETTINGS_MODULE"):
    sys.exit(
        "DJANGO_SETTINGS_MODULE is not set; refusing to start. "
        "Set it (config.settings.production in the image) before starting the server."
    )
application = get_wsgi_application()

# What is loaded by now (settings, URLconf, models, DRF, the libraries) lives as long as
# the process: frozen, the collector never walks it again. A request's own objects are
# short-lived, and CPython's default first threshold (700 allocations) ran a collection
# many times per request, some of them full ones over all of the above.
gc.collect()
gc.freeze()
gc.set_threshold(int(os.environ.get("GC_GEN0_THRESHOLD", "50000")), 20, 20)
