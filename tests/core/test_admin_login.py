"""Brute-force protection of the admin login (django-axes): after AXES_FAILURE_LIMIT wrong
passwords for one username from one address, that pair is locked out, the right password
included, until the cool-off; other usernames (and other addresses) are not."""

import pytest
from django.contrib.auth.models import User
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


def login(client: Client, username: str, password: str):
    return client.post(LOGIN, {"username": username, "password": password, "next": "/admin/"})


def test_repeated_wrong_passwords_lock_the_username_out(settings):
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_user("clerk", password="right-password", is_staff=True)
    User.objects.create_user("other", password="other-password", is_staff=True)
    client = Client()

    assert login(client, "clerk", "wrong").status_code == 200  # the form again, with an error
    assert login(client, "clerk", "wrong").status_code == 200
    assert login(client, "clerk", "wrong").status_code == 429  # the limit: locked out

    locked = login(client, "clerk", "right-password")
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session

    # Per username and address: another staff user from the same address still logs in.
    other = Client()
    assert login(other, "other", "other-password").status_code == 302
    # …and the same username from another address too.
    elsewhere = Client(REMOTE_ADDR="10.0.0.9")
    assert login(elsewhere, "clerk", "right-password").status_code == 302


def test_a_successful_login_resets_the_count(settings):
    settings.AXES_FAILURE_LIMIT = 3
    User.objects.create_user("clerk", password="right-password", is_staff=True)
    client = Client()

    for _ in range(2):
        assert login(client, "clerk", "wrong").status_code == 200
    assert login(client, "clerk", "right-password").status_code == 302
    client.logout()
    for _ in range(2):
        assert login(client, "clerk", "wrong").status_code == 200
    assert login(client, "clerk", "right-password").status_code == 302
