"""Progress of long commands on a terminal (a bar redrawn in place, at most ten times a
second) and in a log (a plain line every tenth of the way, and at least once a minute),
and the denominator counted before the work starts."""

import io
from itertools import count

import pytest
from django.core.management import call_command

from core.progress import TerminalProgress
from tests.factories import CustomerFactory


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_says_how_far_how_fast_and_how_long_left():
    screen, clock = io.StringIO(), Clock()
    progress = TerminalProgress(screen, tty=True, clock=clock)
    clock.now += 512 / 120  # 120 a second

    progress(512, 1000)

    assert screen.getvalue() == "\r[" + "#" * 15 + " " * 15 + "] 512/1,000 (51%) 120/s ETA 4s"
    clock.now += 1
    progress(1000, 1000)
    last = screen.getvalue().split("\r")[-1]
    assert last.rstrip() == "[" + "#" * 30 + "] 1,000/1,000 (100%) 190/s"
    assert last.endswith("\n")  # the bar's line is ended: what follows starts its own


def test_the_bar_is_redrawn_at_most_ten_times_a_second():
    screen, clock = io.StringIO(), Clock()
    progress = TerminalProgress(screen, tty=True, clock=clock)
    for done in range(1, 1001):  # 1,000 items in 10 seconds
        clock.now += 0.01
        progress(done, 1000)

    draws = screen.getvalue().count("\r[")
    assert 80 <= draws <= 101
    assert screen.getvalue().rstrip().endswith("1,000/1,000 (100%) 100/s")


def test_a_note_gets_a_line_of_its_own_and_the_bar_comes_back():
    screen, clock = io.StringIO(), Clock()
    progress = TerminalProgress(screen, label="replay", tty=True, clock=clock)
    progress(1, 4)
    bar = screen.getvalue()[1:]

    progress.note("evt_1 stripe invoice.paid: failed")
    progress(2, 4)  # within the tenth of a second: drawn anyway, the note wiped it

    lines = screen.getvalue().split("\r")
    assert lines[1] == bar and lines[2] == " " * len(bar)
    assert lines[3] == "evt_1 stripe invoice.paid: failed\n"
    assert lines[4].startswith("replay: [" + "#" * 15 + " " * 15 + "] 2/4 (50%)")
    progress.close()
    assert screen.getvalue().endswith("\n")


def test_a_log_gets_a_line_per_tenth_and_one_a_minute_when_it_is_slow():
    log, clock = io.StringIO(), Clock()
    progress = TerminalProgress(log, label="billing run", tty=False, clock=clock)
    progress(0, 1000)
    for done in count(1):
        clock.now += 1  # an item a second: a tenth takes 100 s
        progress(done, 1000)
        if done == 250:
            break

    assert log.getvalue().splitlines() == [
        "billing run: 0/1000 done (0%)",
        "billing run: 60/1000 done (6%)",  # a minute in, no tenth yet
        "billing run: 100/1000 done (10%)",
        "billing run: 160/1000 done (16%)",
        "billing run: 200/1000 done (20%)",
    ]


@pytest.mark.django_db
def test_rotate_encryption_keys_counts_the_rows_then_reports_in_plain_lines():
    CustomerFactory(tax_id="FR123")
    CustomerFactory(tax_id="FR456")
    out = io.StringIO()

    call_command("rotate_encryption_keys", stdout=out)

    # Two customers and their two insert events in the audit history, counted first. The
    # history goes first: the events the rotation itself writes come out new already.
    assert out.getvalue().splitlines() == [
        "re-encrypting rows: 0/4 done (0%)",
        "re-encrypting rows: 2/4 done (50%)",
        "customers.CustomerEvent: 2 row(s) re-encrypted",
        "core.IdempotencyKey: 0 row(s) re-encrypted",
        "re-encrypting rows: 4/4 done (100%)",
        "customers.Customer: 2 row(s) re-encrypted",
        "webhooks.WebhookEvent: 0 row(s) re-encrypted",
        "Done: 4 row(s).",
    ]
