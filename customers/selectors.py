from datetime import datetime

from django.db.models import Q, QuerySet

from customers.models import Customer


def customer_list(
    *,
    search: str | None = None,
    email: str | None = None,
    country: str | None = None,
    created_after: datetime | None = None,
) -> QuerySet[Customer]:
    queryset = Customer.objects.all()
    if search:
        queryset = queryset.filter(
            Q(external_id__icontains=search)
            | Q(name__icontains=search)
            | Q(email__icontains=search)
        )
    if email:
        queryset = queryset.filter(email__iexact=email)
    if country:
        queryset = queryset.filter(country=country.upper())
    if created_after:
        queryset = queryset.filter(created_at__gt=created_after)
    return queryset
