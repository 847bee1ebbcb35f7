import os
import sys

from django.core.asgi import get_asgi_application

# No fallback: see config/wsgi.py.
if not os.environ.get("DJANGO_SETTINGS_MODULE"):
    sys.exit(
        "DJANGO_SETTINGS_MODULE is not set; refusing to start. "
        "Set it (config.settings.production in the image) before starting the server."
    )
application = get_asgi_application()
