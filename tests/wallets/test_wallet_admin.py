"""Granting credits in the admin: its own permission, the same service as the API."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from billing.wallets import services
from billing.wallets.models import Wallet
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def staff(*codenames: str) -> Client:
    user = User.objects.create_user(f"clerk{len(codenames)}", password="x", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="wallets", codename__in=codenames)
    )
    browser = Client()
    browser.force_login(user)
    return browser


def test_granting_credits_needs_its_permission_and_lands_in_the_ledger():
    wallet = services.wallet_create(customer=CustomerFactory(currency="USD"), currency="USD")
    url = f"/admin/wallets/wallet/{wallet.pk}/grant/"
    assert staff("view_wallet").post(url, {"credits": "5"}).status_code == 403

    granter = staff("view_wallet", "grant_credits")
    page = granter.get(f"/admin/wallets/wallet/{wallet.pk}/change/").content.decode()
    assert "Grant free credits" in page
    assert granter.post(url, {"credits": "-1"}).status_code == 200  # the form's error
    done = granter.post(url, {"credits": "12.5", "note": "goodwill"}, follow=True)

    assert "12.5 credits granted" in done.content.decode()
    wallet.refresh_from_db()
    assert wallet.balance_cents == 1250
    assert wallet.transactions.get().note == "goodwill"
    assert Wallet.objects.get().balance_cents == 1250 == int(Decimal("12.5") * 100)
