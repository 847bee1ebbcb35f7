"""Session-level PostgreSQL advisory locks: one worker at a time per key, held across
transactions (and across a network call), released when the connection dies."""

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import OperationalError, connection

from core.exceptions import ServiceUnavailable


class LockTimeout(ServiceUnavailable):
    """Another worker held the lock too long; the same request may succeed later.

    `detail` (what an API caller or staff read) is the default sentence; the lock's name,
    which means something only to us, is in the exception's text, for logs."""

    default_code = "busy"
    default_detail = "The object is busy; try again shortly."

    def __init__(self, key: str, timeout: float) -> None:
        super().__init__()
        self.args = (f"lock {key!r} still held after {timeout:g}s",)


@contextmanager
def advisory_lock(key: str) -> Iterator[bool]:
    """Try to take the lock named `key`; yields whether it was taken (never waits)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
        acquired = cursor.fetchone()[0]
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


@contextmanager
def advisory_lock_waiting(key: str, *, timeout: float) -> Iterator[None]:
    """Take the session-level lock named `key`, waiting up to `timeout` seconds (then
    LockTimeout). For work that must call a provider between reading and writing: the
    lock is held across the network call without any transaction or row lock open."""
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [key])
            if cursor.fetchone()[0]:
                break
            if time.monotonic() >= deadline:
                raise LockTimeout(key, timeout)
            time.sleep(0.05)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])


def advisory_xact_lock(key: str, *, timeout: float) -> None:
    """Take the lock named `key` until the current transaction ends, waiting up to
    `timeout` seconds. Conflicts with `advisory_lock_waiting` on the same key."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{int(timeout * 1000)}ms"])
        try:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])
        except OperationalError as exc:
            raise LockTimeout(key, timeout) from exc
        cursor.execute("SELECT set_config('lock_timeout', '0', true)")
