"""The three staff roles, the command that makes staff users, and the third-party
sections only engineering sees (and only to read)."""

from io import StringIO

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.test import Client

from backoffice.roles import FINANCE, OPERATOR, VIEWER

pytestmark = pytest.mark.django_db


def perms(role: str) -> set[str]:
    group = Group.objects.get(name=role)
    return {
        f"{app}.{code}"
        for app, code in group.permissions.values_list("content_type__app_label", "codename")
    }


def test_each_role_holds_what_it_may_do_and_nothing_of_engineering_s():
    viewer, operator, finance = perms(VIEWER), perms(OPERATOR), perms(FINANCE)

    assert {"invoicing.view_invoice", "customers.view_customer", "wallets.view_wallet"} <= viewer
    assert not any(p.split(".")[1].startswith(("add_", "change_", "delete_")) for p in viewer)
    assert {
        "invoicing.change_invoice",
        "webhooks.replay_webhookevent",
        "coupons.apply_coupon",
    } <= operator
    assert (
        not {"invoicing.void_invoice", "invoicing.issue_credit_note", "wallets.grant_credits"}
        & operator
    )
    assert {
        "invoicing.void_invoice",
        "invoicing.issue_credit_note",
        "invoicing.void_credit_note",
        "wallets.grant_credits",
        "core.add_apikey",
    } <= finance
    assert operator < finance and viewer < operator
    for held in (viewer, operator, finance):
        assert not any(p.startswith(("djstripe.", "django_celery_beat.", "auth.")) for p in held)


def test_create_staff_user_puts_a_new_user_in_a_role_and_moves_one():
    out = StringIO()
    call_command("create_staff_user", "Ada@Example.com", role=OPERATOR, stdout=out)

    user = User.objects.get(username="ada@example.com")
    assert (user.is_staff, user.is_superuser) == (True, False)
    assert [g.name for g in user.groups.all()] == [OPERATOR]
    password = out.getvalue().split("Password (shown once): ")[1].strip()
    assert user.check_password(password)

    call_command("create_staff_user", "ada@example.com", role=FINANCE, stdout=StringIO())
    assert [g.name for g in User.objects.get(pk=user.pk).groups.all()] == [FINANCE]
    assert User.objects.get(pk=user.pk).check_password(password)  # unchanged on a move

    with pytest.raises(CommandError):
        call_command("create_staff_user", "not-an-email", role=VIEWER)
    with pytest.raises(CommandError):
        call_command("create_staff_user", "b@example.com", role="admin")


def staff(role: str) -> Client:
    user = User.objects.create_user(f"{role}@example.com", password="x", is_staff=True)
    user.groups.set([Group.objects.get(name=role)])
    browser = Client()
    browser.force_login(user)
    return browser


def test_roles_never_see_dj_stripe_or_beat_and_engineering_only_reads_them(admin_client):
    page = staff(FINANCE).get("/admin/").content.decode()
    assert "/admin/invoicing/invoice/" in page
    assert "/admin/djstripe/" not in page and "/admin/django_celery_beat/" not in page
    assert staff(VIEWER).get("/admin/djstripe/customer/").status_code == 403

    listing = admin_client.get("/admin/django_celery_beat/periodictask/")
    assert listing.status_code == 200
    assert "/admin/django_celery_beat/periodictask/add/" not in listing.content.decode()
    assert admin_client.get("/admin/django_celery_beat/periodictask/add/").status_code == 403
