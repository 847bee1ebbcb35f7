"""Outbox handlers: bring a customer's latest state to Stripe and to Lago."""

from django.db import transaction

from billing.providers import lago, stripe
from billing.providers.base import CustomerData
from billing.sync.outbox import register
from customers.models import Customer, PaymentMethod


def customer_data(customer: Customer) -> CustomerData:
    return CustomerData(
        id=str(customer.pk),
        external_id=customer.external_id,
        name=customer.name,
        email=customer.email,
        currency=customer.currency,
        country=customer.country,
        address_line1=customer.address_line1,
        city=customer.city,
        zipcode=customer.zipcode,
        state=customer.state,
        tax_id=customer.tax_id,
        metadata=customer.metadata,
    )


@register("customer.sync", "stripe")
def customer_sync_stripe(customer_id: str) -> None:
    # The outbox runs one sync per customer at a time (an advisory lock), and nothing else
    # creates Stripe customers, so reading the id and creating when absent cannot race.
    customer = Customer.objects.get(pk=customer_id)
    data = customer_data(customer)
    stripe_id = customer.stripe_customer_id
    if not stripe_id:
        stripe_id = stripe.customer_create(data=data).id
        # Stored at once, on its own: a failure of the update below must not lose it.
        with transaction.atomic():
            Customer.objects.filter(pk=customer.pk).update(stripe_customer_id=stripe_id)
    remote = stripe.customer_update(
        stripe_id=stripe_id, data=data, version=customer.updated_at.isoformat()
    )
    stripe.mirror(remote)


@register("customer.sync", "lago")
def customer_sync_lago(customer_id: str) -> None:
    customer = Customer.objects.get(pk=customer_id)
    remote = lago.customer_upsert(data=customer_data(customer))
    if str(customer.lago_id or "") != remote.lago_id:
        Customer.objects.filter(pk=customer.pk).update(lago_id=remote.lago_id)


@register("payment_method.mirror", "stripe")
def payment_method_mirror_stripe(payment_method_id: str) -> None:
    method = PaymentMethod.objects.get(pk=payment_method_id)
    stripe.mirror_current(object_type="payment_method", object_id=method.stripe_payment_method_id)
