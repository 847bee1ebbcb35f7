"""The invoice a subscription's current period would get if it ended now with the usage
recorded so far: rated by the very path its real invoice takes (inputs.period_input, then
rating.rate_period and invoice_totals), over a period row that is built, not stored, so
the preview and the invoice never disagree on the same usage."""

from dataclasses import dataclass
from datetime import datetime

from billing.invoicing.coupon_lines import with_coupons
from billing.invoicing.inputs import period_input
from billing.invoicing.rating import Fee, rate_period
from billing.invoicing.totals import Totals, totals_of
from core.exceptions import UnprocessableEntity
from subscriptions.advance import nominal_bounds
from subscriptions.models import Subscription, SubscriptionPeriod
from subscriptions.services import subscription_as_of


@dataclass(frozen=True)
class InvoicePreview:
    subscription: Subscription
    period_start: datetime
    period_end: datetime
    currency: str
    lines: list[Fee]
    totals: Totals


def invoice_preview(
    *, subscription: Subscription, terminated_at: datetime | None = None
) -> InvoicePreview:
    """The current period's invoice as of now: what the period's end would bill (its fixed
    fee, a renewal's fee billed ahead, a cancellation's end) on the usage recorded so far.
    Like every read of a subscription, it first applies what the clock has made due.

    With `terminated_at`: what terminating it then would bill at once (the period cut
    there, its fee prorated as a termination's is), for staff to see before they do it."""
    subscription = subscription_as_of(subscription=subscription)
    start, end = subscription.current_period_start, subscription.current_period_end
    anchor = subscription.billing_anchor_at
    if subscription.status != Subscription.Status.ACTIVE or not (start and end and anchor):
        raise UnprocessableEntity(
            f"Subscription '{subscription.external_id}' is {subscription.status}: it has no "
            "current period to preview.",
            code="no_current_period",
        )
    nominal_start, nominal_end = nominal_bounds(subscription, start)
    if terminated_at is not None:
        end = min(max(terminated_at, start), end)
    period = SubscriptionPeriod(
        subscription=subscription,
        start=start,
        end=end,
        nominal_start=nominal_start,
        nominal_end=nominal_end,
        # A renewal bills the next period's advance fee of the plan it renews into; with a
        # downgrade scheduled that plan has no phase yet, so the preview leaves the fee out
        # rather than show the current plan's.
        reason=(
            SubscriptionPeriod.Reason.TERMINATED
            if terminated_at is not None
            else SubscriptionPeriod.Reason.CANCELED
            if subscription.cancel_at_period_end or subscription.next_plan_id
            else SubscriptionPeriod.Reason.RENEWED
        ),
        trial_ends_at=subscription.trial_ends_at,
    )
    customer = subscription.customer
    currency = subscription.plan.currency
    fees = with_coupons(
        rate_period(period_input(subscription=subscription, period=period)),
        customer_id=customer.pk,
        currency=currency,
        start=start,
        end=end,
        consume=False,
    )
    return InvoicePreview(
        subscription=subscription,
        period_start=start,
        period_end=end,
        currency=currency,
        lines=fees,
        totals=totals_of(fees=fees, tax_rate=customer.tax_rate),
    )
