"""Read replicas (core/replica.py): with DATABASE_REPLICA_URL set, the dashboard and the
CSV exports read the replica and nothing else does; writes stay on the primary; without
a replica, or with one that does not answer, everything reads the primary.

The replica here is a second connection to the test database (what TEST MIRROR gives), so
these tests commit their data (transaction=True): a replica sees only committed rows.
"""

import copy
import csv
import io
import socket

import pytest
from django.db import connections
from django.test.utils import CaptureQueriesContext

from core import replica as replicas
from core.replica import REPLICA, replica_alias, replica_reads
from customers.models import Customer
from tests.factories import CustomerFactory, InvoiceFactory

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", REPLICA])


def _replica_settings(**changes) -> dict:
    settings = copy.deepcopy(connections["default"].settings_dict)
    settings["TEST"] = {**settings["TEST"], "MIRROR": "default"}  # never flushed itself
    return {**settings, **changes}


def _use(settings: dict | None) -> None:
    if REPLICA in connections.settings:
        connections[REPLICA].close()
        del connections[REPLICA]
        del connections.settings[REPLICA]
    if settings is not None:
        connections.settings[REPLICA] = settings


@pytest.fixture(scope="module", autouse=True)
def replica_alias_defined(django_db_setup, django_db_blocker):
    # Defined before each test's database set-up, which checks the aliases it may use.
    with django_db_blocker.unblock():
        _use(_replica_settings())
    yield
    _use(None)


@pytest.fixture
def replica():
    _use(_replica_settings())
    return REPLICA


@pytest.fixture
def replica_down():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens once it is closed
    _use(_replica_settings(PORT=port, OPTIONS={"connect_timeout": 1}))
    yield REPLICA
    _use(_replica_settings())


@pytest.fixture
def no_replica():
    _use(None)
    yield
    _use(_replica_settings())


def _tables(queries) -> set[str]:
    return {
        table
        for q in queries.captured_queries
        for table in ("billing_invoice", "subscriptions_subscription", "customers_customer")
        if f'"{table}"' in q["sql"]
    }


def _get(client, path: str) -> tuple[int, str, set[str], set[str]]:
    """GET `path` (a streamed answer read to its end): status, body, and the report tables
    each database was asked about, (primary, replica)."""
    with (
        CaptureQueriesContext(connections["default"]) as primary,
        CaptureQueriesContext(connections[REPLICA]) as read,
    ):
        response = client.get(path)
        body = (
            b"".join(response.streaming_content) if response.streaming else response.content
        ).decode()
    return response.status_code, body, _tables(primary), _tables(read)


def test_the_dashboard_reads_the_replica_and_not_the_primary(admin_client, replica):
    InvoiceFactory(
        subscription=None, finalized=True, lines=[{"description": "Fee", "amount_cents": 4321}]
    )

    status, body, primary, read = _get(admin_client, "/admin/")

    assert status == 200
    assert "43.21" in body  # the invoice, read from the replica, is on the page
    assert {"billing_invoice", "subscriptions_subscription"} <= read
    assert primary == set()  # the session and the user, nothing of the report


def test_a_csv_export_reads_the_replica(admin_client, replica):
    invoice = InvoiceFactory(subscription=None, finalized=True)

    status, body, primary, read = _get(admin_client, "/admin/invoicing/invoice/export.csv")

    assert status == 200
    assert [row["number"] for row in csv.DictReader(io.StringIO(body))] == [invoice.number]
    assert "billing_invoice" in read
    assert "billing_invoice" not in primary


def test_writes_go_to_the_primary_even_inside_replica_reads(replica):
    with replica_reads() as alias:
        assert alias == REPLICA
        created = Customer.objects.create(external_id="written", name="W", currency="EUR")
        assert Customer.objects.filter(pk=created.pk).exists()  # read back from the replica

    assert Customer.objects.using("default").filter(pk=created.pk).exists()


def test_the_api_reads_the_primary_with_a_replica(client, replica):
    CustomerFactory(external_id="c-1")

    with CaptureQueriesContext(connections[REPLICA]) as read:
        assert client.get("/api/v1/customers/c-1/").status_code == 200

    assert read.captured_queries == []


def test_without_a_replica_everything_reads_the_primary(no_replica):
    assert not replicas.replica_configured()
    assert replica_alias() == "default"
    with replica_reads() as alias:
        assert alias == "default"
        assert Customer.objects.all().db == "default"


def test_a_replica_that_does_not_answer_leaves_the_reports_on_the_primary(
    admin_client, replica_down, caplog
):
    InvoiceFactory(subscription=None, finalized=True)

    assert replica_alias() == "default"
    assert "read replica unreachable" in caplog.text
    assert admin_client.get("/admin/").status_code == 200
    response = admin_client.get("/admin/invoicing/invoice/export.csv")
    assert len(b"".join(response.streaming_content).decode().splitlines()) == 2
