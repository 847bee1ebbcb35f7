from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from core.exceptions import DomainError
from core.progress import TerminalProgress
from webhooks.models import WebhookEvent
from webhooks.services import webhook_event_replay


class Command(BaseCommand):
    help = "Re-run processing of stored webhook events from their stored bodies."

    def add_arguments(self, parser):
        parser.add_argument("--failed", action="store_true", help="Only events that failed.")
        parser.add_argument("--since", help="Only events received at or after this ISO time.")
        parser.add_argument(
            "--id",
            action="append",
            default=[],
            dest="ids",
            help="An event's id or provider event id (repeatable).",
        )
        parser.add_argument("--provider", choices=["stripe", "lago"])

    def handle(self, *args, failed: bool, since: str | None, ids: list[str], provider, **opts):
        if not (failed or since or ids):
            raise CommandError("Say which events: --failed, --since and/or --id.")
        events = WebhookEvent.objects.order_by("received_at")
        if failed:
            events = events.filter(status=WebhookEvent.Status.FAILED)
        if since:
            moment = parse_datetime(since)
            if moment is None:
                raise CommandError(f"--since {since!r} is not an ISO 8601 time")
            events = events.filter(received_at__gte=moment)
        if provider:
            events = events.filter(provider=provider)
        if ids:
            uuids = [value for value in ids if _is_uuid(value)]
            events = events.filter(pk__in=uuids) | events.filter(event_id__in=ids)
        results: dict[str, int] = {}
        total = events.count()
        progress = TerminalProgress(self.stdout, label="replay")
        progress(0, total)
        for done, event in enumerate(events.iterator(), start=1):
            try:
                outcome = webhook_event_replay(event=event)
            except DomainError:  # a live worker is processing it: left to that worker
                outcome = "busy"
            results[outcome] = results.get(outcome, 0) + 1
            if outcome not in ("processed", "ignored"):  # the bar says the rest
                progress.note(
                    f"{event.pk} {event.provider} {event.type}: {outcome}", out=self.stderr
                )
            progress(done, total)
        progress.close()
        total = sum(results.values())
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(results.items())) or "none"
        self.stdout.write(self.style.SUCCESS(f"Replayed {total} event(s): {summary}."))


def _is_uuid(value: str) -> bool:
    import uuid

    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
