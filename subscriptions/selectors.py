from datetime import datetime
from uuid import UUID

from django.db.models import QuerySet

from customers.models import Customer
from subscriptions.models import Subscription


def subscription_list(
    *, customer: str | None = None, status: str | None = None, plan: str | None = None
) -> QuerySet[Subscription]:
    queryset = Subscription.objects.select_related("customer", "plan", "next_plan")
    if customer:
        queryset = queryset.filter(customer__external_id=customer)
    if status:
        queryset = queryset.filter(status=status)
    if plan:
        queryset = queryset.filter(plan__code=plan)
    return queryset


def subscriptions_due(*, now: datetime, limit: int = 500) -> list[UUID]:
    """Ids of subscriptions with something due: a start, or a period that has ended."""
    from django.db.models import Q

    return list(
        Subscription.objects.filter(
            Q(status=Subscription.Status.PENDING, start_at__lte=now)
            | Q(status=Subscription.Status.ACTIVE, current_period_end__lte=now)
        )
        .order_by("current_period_end")
        .values_list("pk", flat=True)[:limit]
    )


def customer_has_subscriptions(*, customer: Customer) -> bool:
    """Answers customers' `currency_in_use`: any subscription, even ended, was priced in it."""
    return Subscription.objects.filter(customer=customer).exists()
