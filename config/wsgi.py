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
