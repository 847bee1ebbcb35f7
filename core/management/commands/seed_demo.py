"""An idempotent demo: running it again changes nothing but the printed API key."""

import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from core.models import ApiKey
from customers import services
from customers.models import Customer

DEMO_KEY_NAME = "demo"
DEMO_CUSTOMERS = [
    {
        "external_id": "demo-acme",
        "name": "Acme Corp",
        "email": "billing@acme.test",
        "currency": "USD",
        "country": "US",
        "city": "San Francisco",
    },
    {
        "external_id": "demo-globex",
        "name": "Globex GmbH",
        "email": "ap@globex.test",
        "currency": "EUR",
        "country": "DE",
        "city": "Berlin",
    },
    {
        "external_id": "demo-initech",
        "name": "Initech Ltd",
        "email": "finance@initech.test",
        "currency": "GBP",
        "country": "GB",
        "city": "London",
    },
]


class Command(BaseCommand):
    help = "Seed a demo: a superuser, an API key and a few customers. Safe to rerun."

    def handle(self, *args, **options):
        username = os.environ.get("DEMO_ADMIN_USERNAME", "admin")
        password = os.environ.get("DEMO_ADMIN_PASSWORD", "admin-demo-password")
        with transaction.atomic():
            user, created = get_user_model().objects.get_or_create(
                username=username, defaults={"is_staff": True, "is_superuser": True}
            )
            if created:
                user.set_password(password)
                user.save()
            # Only a hash is stored, so the demo key cannot be shown again: replace it.
            ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            _, raw_key = ApiKey.generate(name=DEMO_KEY_NAME)
            for fields in DEMO_CUSTOMERS:
                if not Customer.objects.filter(external_id=fields["external_id"]).exists():
                    services.customer_create(**fields)
        self.stdout.write(self.style.SUCCESS("Demo ready."))
        if user.check_password(password):
            self.stdout.write(f"  Admin login:  {username} / {password}")
        else:
            self.stdout.write(
                f"  Admin login:  {username} (its password was changed since seeding)"
            )
        self.stdout.write(f"  API key:      {raw_key}")
        self.stdout.write(
            f'  Try:          curl -H "Authorization: Bearer {raw_key}" '
            "http://127.0.0.1:8000/api/v1/customers/"
        )
