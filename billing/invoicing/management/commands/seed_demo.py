"""An idempotent demo: running it again changes nothing but the printed API key."""

import os
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from billing.invoicing.billing_run import billing_run
from billing.usage.services import usage_record_batch
from core.models import ApiKey
from customers import services
from customers.models import Customer
from subscriptions import catalog
from subscriptions import services as subscriptions
from subscriptions.models import BillableMetric, Plan, Subscription

DEMO_KEY_NAME = "demo"
# One demo account per staff role (backoffice/roles.py makes the groups at migrate).
DEMO_STAFF = {
    "viewer@demo.test": "viewer",
    "operator@demo.test": "billing operator",
    "finance@demo.test": "finance admin",
}
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
            staff_password = os.environ.get("DEMO_STAFF_PASSWORD", "staff-demo-password")
            for email, role in DEMO_STAFF.items():
                staff, made = get_user_model().objects.get_or_create(
                    username=email, defaults={"email": email, "is_staff": True}
                )
                if made:
                    staff.set_password(staff_password)
                    staff.save()
                    staff.groups.set(Group.objects.filter(name=role))
            # Only a hash is stored, so the demo key cannot be shown again: replace it.
            ApiKey.objects.filter(name=DEMO_KEY_NAME, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            _, raw_key = ApiKey.generate(name=DEMO_KEY_NAME)
            for fields in DEMO_CUSTOMERS:
                if not Customer.objects.filter(external_id=fields["external_id"]).exists():
                    services.customer_create(**fields)
            _seed_catalog()
            _seed_last_month()
        # Invoices for the closed demo period, as the beat job would make them.
        billing_run()
        self.stdout.write(self.style.SUCCESS("Demo ready."))
        if user.check_password(password):
            self.stdout.write(f"  Admin login:  {username} / {password}")
        else:
            self.stdout.write(
                f"  Admin login:  {username} (its password was changed since seeding)"
            )
        self.stdout.write(
            f"  Staff logins: {', '.join(DEMO_STAFF)} / {staff_password} "
            "(viewer, billing operator, finance admin)"
        )
        self.stdout.write(f"  API key:      {raw_key}")
        self.stdout.write(
            f'  Try:          curl -H "Authorization: Bearer {raw_key}" '
            "http://127.0.0.1:8000/api/v1/customers/"
        )


def _seed_catalog() -> None:
    """A metric, a plan with a standard and a graduated charge, and one subscription."""
    if not BillableMetric.objects.filter(code="api_calls").exists():
        catalog.metric_create(code="api_calls", name="API calls", aggregation="count")
    if not BillableMetric.objects.filter(code="tokens").exists():
        catalog.metric_create(code="tokens", name="Tokens", aggregation="sum", field_name="tokens")
    if not Plan.objects.filter(code="demo-pro").exists():
        catalog.plan_create(
            code="demo-pro",
            name="Pro",
            interval="monthly",
            amount_cents=4900,
            currency="USD",
            charges=[
                {
                    "metric": BillableMetric.objects.get(code="api_calls"),
                    "charge_model": "standard",
                    "properties": {"amount": "0.002"},
                },
                {
                    "metric": BillableMetric.objects.get(code="tokens"),
                    "charge_model": "graduated",
                    "properties": {
                        "graduated_ranges": [
                            {
                                "from_value": 0,
                                "to_value": 100000,
                                "per_unit_amount": "0",
                                "flat_amount": "0",
                            },
                            {
                                "from_value": 100001,
                                "to_value": None,
                                "per_unit_amount": "0.00002",
                                "flat_amount": "0",
                            },
                        ]
                    },
                },
            ],
        )
    if not Subscription.objects.filter(external_id="demo-acme-pro").exists():
        subscriptions.subscription_create(
            external_id="demo-acme-pro",
            customer=Customer.objects.get(external_id="demo-acme"),
            plan=Plan.objects.get(code="demo-pro"),
        )


def _seed_last_month() -> None:
    """A subscription that started last month, with some usage, and its period closed:
    the billing run invoices it, so the admin shows an invoice from the start."""
    if Subscription.objects.filter(external_id="demo-acme-archive").exists():
        return
    now = timezone.now()
    this_month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    subscription = subscriptions.subscription_create(
        external_id="demo-acme-archive",
        customer=Customer.objects.get(external_id="demo-acme"),
        plan=Plan.objects.get(code="demo-pro"),
        start_at=last_month,
    )
    usage_record_batch(
        events=[
            {
                "transaction_id": f"demo-archive-{day}-{n}",
                "subscription": subscription.external_id,
                "metric": "api_calls",
                "timestamp": last_month + timedelta(days=day, hours=n),
                "properties": {},
            }
            for day in range(0, 20, 2)
            for n in range(3)
        ]
    )
    subscriptions.subscription_advance(subscription=subscription, now=now)
