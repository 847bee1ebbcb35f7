"""Progress of long operations: a bar on a terminal, plain lines in a log, and a line in
the admin for a billing run started there."""

import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from backoffice.roles import VIEWER
from billing.invoicing.tasks import billing_run
from core.progress import TerminalProgress
from tests.factories import SubscriptionFactory
from tests.helpers.invoicing import OCT_1, close_periods


def test_a_log_gets_a_line_per_tenth_and_a_terminal_a_bar():
    log = io.StringIO()
    report = TerminalProgress(log, label="replay", tty=False)
    for done in range(21):
        report(done, 20)
    lines = log.getvalue().splitlines()
    assert lines[0] == "replay: 0/20 done (0%)" and lines[-1] == "replay: 20/20 done (100%)"
    assert len(lines) == 11

    screen = io.StringIO()
    TerminalProgress(screen, tty=True)(20, 20)
    assert screen.getvalue().startswith("\r[" + "#" * 30 + "] 20/20 (100%)")
    assert screen.getvalue().endswith("\n")


@pytest.mark.django_db
def test_run_billing_shows_its_progress(catalog):
    SubscriptionFactory(
        external_id="sub-p", customer=catalog.acme, plan=catalog.pro, start_at=OCT_1
    )
    close_periods()
    out = io.StringIO()

    call_command("run_billing", stdout=out)

    text = out.getvalue()
    assert "billing run: 0/1 done (0%)" in text and "billing run: 1/1 done (100%)" in text
    assert "Billing run: 1 period(s): 1 invoice(s) generated, 1 finalized, 0 failed" in text


@pytest.mark.django_db
def test_a_run_started_in_the_admin_shows_a_progress_line(admin_client, catalog):
    SubscriptionFactory(
        external_id="sub-q", customer=catalog.acme, plan=catalog.pro, start_at=OCT_1
    )
    close_periods()
    assert "Run billing now" in admin_client.get("/admin/").content.decode()

    started = admin_client.post("/admin/billing-run/")
    page = started["Location"]
    job_id = page.rstrip("/").rsplit("/", 1)[1]
    queued = admin_client.get(page).content.decode()
    billing_run(job_id)  # what the worker does with the queued task
    finished = admin_client.get(page).content.decode()

    assert started.status_code == 302 and "Queued" in queued and 'http-equiv="refresh"' in queued
    assert "Finished: 1 period(s): 1 invoice(s) generated" in finished
    assert 'http-equiv="refresh"' not in finished

    viewer = User.objects.create_user("v", password="x", is_staff=True)
    viewer.groups.set([Group.objects.get(name=VIEWER)])
    browser = Client()
    browser.force_login(viewer)
    assert browser.post("/admin/billing-run/").status_code == 403
    assert "Run billing now" not in browser.get("/admin/").content.decode()
