"""What the browser tests share: staff users in a role, logging in through the admin's
form, and screenshots (under .run/screenshots/, or $SCREENSHOT_DIR) for people to look at."""

import os
from pathlib import Path

from django.contrib.auth.models import Group, User
from playwright.sync_api import Page

SCREENSHOTS = Path(
    os.environ.get("SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / ".run" / "screenshots")
)
PASSWORD = "browser-test-password"


def staff_user(role: str) -> User:
    user = User.objects.create_user(
        f"{role.replace(' ', '-')}@example.com", password=PASSWORD, is_staff=True
    )
    user.groups.set([Group.objects.get(name=role)])
    return user


def log_in(page: Page, user: User) -> None:
    page.goto("/admin/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def shot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
