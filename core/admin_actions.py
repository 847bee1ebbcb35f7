"""Admin actions that run a service on each selected row.

Every row runs in its own transaction, so one refusal neither undoes nor stops the others.
A domain error (or a Django validation error) is reported for its row in the sentence
the domain gave; anything else is logged with its traceback and reported as unexpected.
Nothing escapes as a server error, and a long selection is summed up, not listed whole.
"""

import logging
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import Any, TypeVar

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction

from core.exceptions import DomainError, error_message

logger = logging.getLogger(__name__)
Row = TypeVar("Row")
MAX_REPORTED = 20


def few(names: list[str], limit: int = MAX_REPORTED) -> str:
    more = len(names) - limit
    return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")


def run_each(
    request,
    rows: Iterable[Row],
    service: Callable[[Row], Any],
    *,
    done: str,
    noun: str = "",
    refused: str | None = None,
    describe: Callable[[Row], str] = str,
    atomic: bool = True,
) -> list[tuple[Row, Any]]:
    """`service(row)` on each row; reports each refusal and one summary of successes
    ("3 invoice(s) finalized: …", named by the service's result when it returns the row
    changed, e.g. an invoice that now has its number).

    Returns the (row, result) pairs that succeeded, for callers with more to say.
    `atomic=False` is for services that must run outside any transaction (they call a
    provider between their own transactions, e.g. webhook processing).
    """
    succeeded: list[tuple[Row, Any]] = []
    not_done = refused or f"not {done}"
    failures = 0
    for row in rows:
        try:
            with transaction.atomic() if atomic else nullcontext():
                result = service(row)
        except (DomainError, ValidationError) as exc:
            reason = error_message(exc)
        except Exception:
            logger.exception(
                "admin action failed",
                extra={"model": type(row).__name__, "object_id": str(getattr(row, "pk", ""))},
            )
            reason = "unexpected error (logged)."
        else:
            succeeded.append((row, result))
            continue
        failures += 1
        if failures <= MAX_REPORTED:
            messages.error(request, f"{describe(row)}: {not_done}: {reason}")
    if failures > MAX_REPORTED:
        messages.error(request, f"… and {failures - MAX_REPORTED} more {not_done}.")
    if succeeded:
        names = [
            describe(result if isinstance(result, type(row)) else row) for row, result in succeeded
        ]
        counted = f"{len(names)} {noun} {done}" if noun else f"{len(names)} {done}"
        messages.success(request, f"{counted}: {few(names)}.")
    return succeeded
