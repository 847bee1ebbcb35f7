"""`replay_webhooks` counts the events first, then reports its progress: in a log, a
plain line every tenth of the way; what did not go through, on stderr, one line each."""

import io

import pytest
from django.core.management import call_command
from django.utils import timezone

from tests.factories import WebhookEventFactory
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db


def test_a_replay_in_a_log_counts_first_then_says_how_far_it_is():
    for _ in range(4):
        WebhookEventFactory(provider="lago", failed=True)
    held = WebhookEventFactory(provider="lago", failed=True)
    # A live worker holds this one: the replay leaves it to that worker.
    WebhookEvent.objects.filter(pk=held.pk).update(status="processing", locked_at=timezone.now())
    WebhookEventFactory(provider="lago", processed=True)  # --since takes it too
    out, err = io.StringIO(), io.StringIO()

    call_command("replay_webhooks", "--since", "2000-01-01T00:00:00Z", stdout=out, stderr=err)

    lines = out.getvalue().splitlines()
    assert lines[0] == "replay: 0/6 done (0%)"  # the denominator, before any replay
    assert lines[1:-1] == [f"replay: {n}/6 done ({n / 6:.0%})" for n in range(1, 7)]
    assert lines[-1].startswith("Replayed 6 event(s): 1 busy, ")
    assert err.getvalue() == f"{held.pk} lago {held.type}: busy\n"
