"""Read replicas, opted into: DATABASE_REPLICA_URL adds a `replica` database, and reads
made inside `replica_reads()` (or by a queryset `.using(replica_alias())`) go to it.

Only reports opt in: the back office's dashboard and the admin's CSV exports, which read
much and can be a few seconds behind. Everything else, the API above all, reads the
primary, so a caller always reads what it has just written. Writes always go to the
primary; migrations run on it only.

A replica that cannot be reached is not an outage of the reports: they fall back to the
primary (logged), at the primary's cost, until it is back.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from django.db import DatabaseError, connections

logger = logging.getLogger(__name__)

REPLICA = "replica"
_reading_replica: ContextVar[str | None] = ContextVar("replica_reads", default=None)


def replica_configured() -> bool:
    return REPLICA in connections.settings


def replica_alias() -> str:
    """The database reports should read: the replica when one is configured and answers,
    else the primary."""
    if not replica_configured():
        return "default"
    try:
        connections[REPLICA].ensure_connection()
    except DatabaseError:
        logger.warning("read replica unreachable; reading the primary", exc_info=True)
        return "default"
    return REPLICA


@contextmanager
def replica_reads() -> Iterator[str]:
    """Route this block's ORM reads to the replica (ReplicaRouter); yields the alias."""
    alias = replica_alias()
    token = _reading_replica.set(alias)
    try:
        yield alias
    finally:
        _reading_replica.reset(token)


class ReplicaRouter:
    """DATABASE_ROUTERS entry: reads inside replica_reads() go where it chose; everything
    else is the primary's."""

    def db_for_read(self, model, **hints) -> str | None:
        return _reading_replica.get()

    def db_for_write(self, model, **hints) -> str:
        return "default"

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True  # one database, two copies of it

    def allow_migrate(self, db: str, app_label: str, **hints) -> bool:
        return db == "default"
