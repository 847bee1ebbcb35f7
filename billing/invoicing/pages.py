"""One page of the billing run: a few hundred closed periods invoiced and issued in one
transaction, with a fixed number of statements whatever the page's size.

A page is claimed with FOR UPDATE SKIP LOCKED, so runs on several workers (or machines)
bill disjoint pages; then, in the same transaction:

1. the page's subscriptions are locked FOR UPDATE, in id order (usage recording holds
   them FOR KEY SHARE: an event is committed before the usage is read, or refused as
   `period_closed`; and two pages lock shared subscriptions in one order, no deadlock);
2. what rating reads is read for the whole page: phases with their plans, period rows,
   and the usage of every window in one aggregate query (inputs.Prefetched);
3. each period is rated in memory by the same code as an invoice made one at a time
   (period_input + rate_period + totals_of): the figures cannot differ;
4. the drafts and their lines are inserted in bulk, the periods marked billed in one
   UPDATE; the page's invoices take their numbers from the sequence in one UPDATE (the
   row stays locked until commit: numbers are gapless across workers), and are issued
   in one UPDATE.

A period whose issue touches other ledgers goes through the one-at-a-time path (savepoint
per period, inside the page): a customer with an active coupon, prepaid credits or a
credit balance, a period that already has an invoice, a total below zero. A crash
anywhere leaves the whole page queued: nothing of it was committed. If the page itself
fails (a bug, a deadlock with a staff action), its periods are billed one at a time
instead, each in its own transaction, so one bad period never holds back the others.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from billing.coupons.models import AppliedCoupon
from billing.invoicing import events
from billing.invoicing.inputs import Catalog, Prefetched, period_input
from billing.invoicing.models import CreditNote, Invoice, InvoiceLine
from billing.invoicing.numbering import take_numbers
from billing.invoicing.rating import Fee, rate_period
from billing.invoicing.services import invoice_lines
from billing.invoicing.totals import totals_of
from billing.usage.selectors import UsageWindow, windows_units
from billing.wallets.models import Wallet
from subscriptions.models import BillableMetric, Subscription, SubscriptionPeriod, SubscriptionPhase

logger = logging.getLogger(__name__)
S = Invoice.Status
P = Invoice.PaymentStatus
CARRIED = (BillableMetric.Aggregation.WEIGHTED_SUM,)


@dataclass
class PageOutcome:
    """What one page did: `claimed` is empty when the queue had nothing left."""

    claimed: list[int] = field(default_factory=list)
    generated: int = 0
    finalized: int = 0
    one_by_one: list[SubscriptionPeriod] = field(default_factory=list)


def bill_page(
    *,
    due: Q,
    after_pk: int,
    size: int,
    catalog: Catalog,
    bill_one: Callable[[SubscriptionPeriod], None],
    claimed: list[int],
) -> PageOutcome:
    """Claim and bill the next page of due periods after `after_pk`. `bill_one` is the
    one-at-a-time path (billing_run._bill: a savepoint, its own error accounting).
    `claimed` receives the page's period ids as soon as they are claimed, so a caller
    whose page failed knows which periods to bill another way."""
    outcome = PageOutcome(claimed=claimed)
    with transaction.atomic():
        periods = list(
            SubscriptionPeriod.objects.filter(due, billed_at__isnull=True, pk__gt=after_pk)
            .order_by("pk")
            .select_for_update(skip_locked=True)[:size]
        )
        claimed += [p.pk for p in periods]
        if not periods:
            return outcome
        in_bulk, outcome.one_by_one = _split(periods)
        if in_bulk:
            _bill_in_bulk(in_bulk, catalog, outcome)
        # In the queue's order: a subscription's invoices are numbered as its periods ran.
        for period in sorted(outcome.one_by_one, key=lambda p: p.pk):
            bill_one(period)
    return outcome


def _split(
    periods: list[SubscriptionPeriod],
) -> tuple[list[tuple[SubscriptionPeriod, Subscription]], list[SubscriptionPeriod]]:
    subscriptions = {
        s.pk: s
        for s in Subscription.objects.select_for_update(of=("self",))
        .select_related("customer", "plan")
        .filter(pk__in={p.subscription_id for p in periods})
        .order_by("pk")
    }
    customer_ids = {s.customer_id for s in subscriptions.values()}
    elsewhere = _customers_with_credits(customer_ids)
    invoiced = set(
        Invoice.objects.filter(
            subscription_id__in=subscriptions,
            engine=Invoice.Engine.LOCAL,
            status__in=[S.DRAFT, S.FINALIZED],
        ).values_list("subscription_id", "period_start", "period_end")
    )
    # All of a subscription's periods go the same way, so its invoices keep their order.
    alone = {sub for sub, start, end in invoiced} & {p.subscription_id for p in periods}
    in_bulk, one_by_one = [], []
    for period in periods:
        subscription = subscriptions[period.subscription_id]
        if subscription.customer_id in elsewhere or period.subscription_id in alone:
            one_by_one.append(period)
        else:
            in_bulk.append((period, subscription))
    return in_bulk, one_by_one


def _customers_with_credits(customer_ids: set[UUID]) -> set[UUID]:
    """Customers whose invoices take something off another ledger when issued (coupons,
    prepaid credits, credit notes' balance): billed one at a time, with their locks."""
    ids = list(customer_ids)
    coupons = AppliedCoupon.objects.filter(
        customer_id__in=ids, status=AppliedCoupon.Status.ACTIVE
    ).values_list("customer_id", flat=True)
    wallets = Wallet.objects.filter(
        customer_id__in=ids, status=Wallet.Status.ACTIVE, balance_cents__gt=0
    ).values_list("customer_id", flat=True)
    notes = CreditNote.objects.filter(
        customer_id__in=ids, status=CreditNote.Status.ISSUED, balance_amount_cents__gt=0
    ).values_list("customer_id", flat=True)
    return set(coupons.union(wallets, notes))


def _prefetch(page: list[tuple[SubscriptionPeriod, Subscription]], catalog: Catalog) -> Prefetched:
    subscription_ids = sorted({s.pk for _, s in page})
    first = min(p.start for p, _ in page)
    last = max(p.end for p, _ in page)
    prefetched = Prefetched()
    for subscription_id in subscription_ids:
        prefetched.phases[subscription_id] = []
        prefetched.periods[subscription_id] = []
    phases = (
        SubscriptionPhase.objects.filter(subscription_id__in=subscription_ids, started_at__lte=last)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=first))
        .select_related("plan")
        .order_by("started_at", "id")
    )
    for phase in phases:
        prefetched.phases[phase.subscription_id].append(phase)
    for row in SubscriptionPeriod.objects.filter(subscription_id__in=subscription_ids).only(
        "subscription_id", "start", "end", "reason"
    ):
        prefetched.periods[row.subscription_id].append(row)
    counted = {
        pk: m
        for pk, m in catalog.metrics.items()
        if not m.recurring and m.aggregation not in CARRIED
    }
    windows: list[UsageWindow] = []
    for period, subscription in page:
        for phase in prefetched.covering(subscription.pk, period.start, period.end):
            start = max(phase.started_at, period.start)
            end = min(phase.ended_at or period.end, period.end)
            metrics = {c.metric_id for c in catalog.charges(phase.plan)}
            # A window with a carried metric is read by usage_units() itself.
            if end > start and metrics <= counted.keys():
                windows.append((subscription.pk, start, end))
    prefetched.units = windows_units(list(dict.fromkeys(windows)), counted)
    return prefetched


def _bill_in_bulk(
    page: list[tuple[SubscriptionPeriod, Subscription]], catalog: Catalog, outcome: PageOutcome
) -> None:
    prefetched = _prefetch(page, catalog)
    rated: list[tuple[SubscriptionPeriod, Invoice, list[Fee]]] = []
    owed_to_customer: set[UUID] = set()
    for period, subscription in page:
        fees = rate_period(
            period_input(
                subscription=subscription, period=period, catalog=catalog, prefetched=prefetched
            )
        )
        invoice = Invoice(
            customer=subscription.customer,
            subscription=subscription,
            period_start=period.start,
            period_end=period.end,
            currency=subscription.plan.currency,
        )
        totals_of(fees=fees, tax_rate=subscription.customer.tax_rate).apply_to(invoice)
        if invoice.total_amount_cents < 0:
            # Owed to the customer: credited to their prepaid credits, one at a time.
            owed_to_customer.add(subscription.pk)
        rated.append((period, invoice, fees))
    invoices: list[Invoice] = []
    lines: list[InvoiceLine] = []
    billed: list[int] = []
    for period, invoice, fees in rated:
        if period.subscription_id in owed_to_customer:
            outcome.one_by_one.append(period)
            continue
        invoices.append(invoice)
        lines += invoice_lines(invoice, fees, catalog)
        billed.append(period.pk)
    if not invoices:
        return
    now = timezone.now()
    Invoice.objects.bulk_create(invoices)
    InvoiceLine.objects.bulk_create(lines)
    SubscriptionPeriod.objects.filter(pk__in=billed).update(billed_at=now)
    outcome.generated += len(invoices)
    issue_many(invoices, now)
    outcome.finalized += len(invoices)


def issue_many(invoices: list[Invoice], now: datetime) -> None:
    """invoice_finalize() for drafts that take nothing off another ledger: numbered in
    one UPDATE of the sequence, issued in one UPDATE of the invoices."""
    issuer = settings.INVOICE_ISSUER
    numbers = take_numbers(issuer, settings.INVOICE_NUMBER_PREFIX or issuer, len(invoices))
    owed = []
    for invoice, number in zip(invoices, numbers, strict=True):
        invoice.issuer, invoice.number, invoice.status = issuer, number, S.FINALIZED
        invoice.issued_at = now
        invoice.due_date = (now + timedelta(days=settings.INVOICE_DUE_DAYS)).date()
        if invoice.payable_amount_cents == 0:
            invoice.payment_status, invoice.paid_at = P.SUCCEEDED, now  # nothing to collect
        else:
            invoice.payment_status = P.PENDING
            owed.append(invoice)
    if owed:
        events.payments_requested.publish(invoices=owed, now=now)
    _save_issued(invoices, now)
    logger.info(
        "invoices issued",
        extra={"count": len(invoices), "first": numbers[0], "last": numbers[-1]},
    )


def _save_issued(invoices: list[Invoice], now: datetime) -> None:
    columns = {
        "number": ("text", lambda i: i.number),
        "payment_status": ("text", lambda i: i.payment_status),
        "paid_at": ("timestamptz", lambda i: i.paid_at),
        "next_payment_attempt_at": ("timestamptz", lambda i: i.next_payment_attempt_at),
        "payment_blocked_reason": ("text", lambda i: i.payment_blocked_reason),
    }
    names = ", ".join(columns)
    arrays = ", ".join(f"%s::{kind}[]" for kind, _ in columns.values())
    sets = ", ".join(f"{name} = v.{name}" for name in columns)
    first = invoices[0]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {Invoice._meta.db_table} AS i
            SET {sets}, issuer = %s, status = %s, issued_at = %s, due_date = %s,
                updated_at = %s
            FROM unnest(%s::uuid[], {arrays}) AS v(id, {names})
            WHERE i.id = v.id AND i.status = 'draft'
            """,
            [
                first.issuer,
                S.FINALIZED.value,
                now,
                first.due_date,
                now,
                [i.pk for i in invoices],
                *([read(i) for i in invoices] for _, read in columns.values()),
            ],
        )
        if cursor.rowcount != len(invoices):
            raise RuntimeError(f"issued {cursor.rowcount} of {len(invoices)} drafts")
