"""What customers owe: the amount due of each issued invoice, computed in the database
(the same chain as Invoice.amount_due_cents, billing/invoicing/totals.py), and its ageing
by days past the due date. The dashboard, the invoice list's filter and its columns read
these, so "overdue" means one thing everywhere."""

from datetime import date, timedelta

from django.db.models import (
    BigIntegerField,
    Case,
    DurationField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Value,
    When,
)
from django.db.models.functions import Greatest

from billing.invoicing.models import Invoice

# (key, label, first day past due, last day past due or None): "current" is not yet due.
BUCKETS = (
    ("current", "Not yet due", None, 0),
    ("1-30", "1-30 days", 1, 30),
    ("31-60", "31-60 days", 31, 60),
    ("61-90", "61-90 days", 61, 90),
    ("90+", "Over 90 days", 91, None),
)


def amount_due() -> ExpressionWrapper:
    return ExpressionWrapper(
        Greatest(F("total_amount_cents"), 0)
        - F("prepaid_credit_amount_cents")
        - F("credit_balance_amount_cents")
        - F("paid_amount_cents")
        - F("offset_amount_cents"),
        output_field=BigIntegerField(),
    )


# Nothing is due on these, as Invoice.amount_due_cents says.
SETTLED = (
    Invoice.PaymentStatus.SUCCEEDED,
    Invoice.PaymentStatus.PARTIALLY_REFUNDED,
    Invoice.PaymentStatus.REFUNDED,
)


def amount_due_of_any() -> Case:
    """amount_due() for any invoice, as Invoice.amount_due_cents says it: a draft, a
    voided or a settled invoice owes nothing, whatever its figures (a list sorted by what
    is due must not put a voided invoice's total on top)."""
    return Case(
        When(
            Q(status=Invoice.Status.FINALIZED) & ~Q(payment_status__in=SETTLED),
            then=amount_due(),
        ),
        default=Value(0),
        output_field=BigIntegerField(),
    )


def days_overdue(today: date, *, due: str = "due_cents") -> Case:
    """Days past the due date of an invoice with something still due (`due`: the name
    of an amount_due_of_any() annotation), else none: an interval, sortable."""
    return Case(
        When(
            Q(**{f"{due}__gt": 0}, due_date__lt=today),
            then=ExpressionWrapper(Value(today) - F("due_date"), output_field=DurationField()),
        ),
        default=Value(timedelta(0)),
        output_field=DurationField(),
    )


def owed(queryset: QuerySet[Invoice] | None = None) -> QuerySet[Invoice]:
    """Issued invoices with something still due, annotated with `due_cents`."""
    queryset = Invoice.objects.all() if queryset is None else queryset
    return (
        queryset.filter(status=Invoice.Status.FINALIZED)
        .annotate(due_cents=amount_due())
        .filter(due_cents__gt=0)
    )


def in_bucket(key: str, today: date) -> Q:
    """Invoices whose due date puts them in one ageing bucket ("overdue": any past due)."""
    if key == "overdue":
        return Q(due_date__lt=today)
    for name, _, first, last in BUCKETS:
        if name != key:
            continue
        if first is None:  # not yet due: today or later, or no due date
            return Q(due_date__gte=today) | Q(due_date__isnull=True)
        condition = Q(due_date__lte=today - timedelta(days=first))
        if last is not None:
            condition &= Q(due_date__gte=today - timedelta(days=last))
        return condition
    raise ValueError(f"no ageing bucket {key!r}")
