#!/usr/bin/env python
import os
import sys


def main() -> None:
    if not os.environ.get("DJANGO_SETTINGS_MODULE"):
        # The image sets BILLING_IMAGE: there, a missing settings module is a deployment
        # mistake, never a reason to run on local settings (DEBUG on, a committed key).
        if os.environ.get("BILLING_IMAGE"):
            sys.exit(
                "DJANGO_SETTINGS_MODULE is not set; refusing to start in the image. "
                "Set it (config.settings.production)."
            )
        os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"  # developers only
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
