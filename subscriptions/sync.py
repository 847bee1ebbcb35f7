"""Outbox handlers: make Lago hold what we hold (when Lago sync is configured).

Each handler reads our row fresh and Lago's current view, and sends only what differs, so
running one twice, late, or after coalesced saves converges on the same state.
"""

from dataclasses import replace
from datetime import timedelta

from billing.providers import lago
from billing.providers.base import (
    ChargeData,
    ChargeFilterData,
    ChargeOverride,
    CommitmentData,
    MetricData,
    MetricFilter,
    PlanData,
    PlanOverrides,
    SubscriptionData,
)
from billing.sync.outbox import register, waiting_for
from subscriptions.models import BillableMetric, Plan, Subscription

S = Subscription.Status


@register("metric.sync", "lago")
def metric_sync_lago(metric_id: str) -> None:
    metric = BillableMetric.objects.get(pk=metric_id)
    remote = lago.metric_upsert(
        metric=MetricData(
            code=metric.code,
            name=metric.name,
            aggregation=metric.aggregation,
            field_name=metric.field_name,
            description=metric.description,
            filters=tuple(
                MetricFilter(key=item["key"], values=tuple(item["values"]))
                for item in metric.filters
            ),
            recurring=metric.recurring,
            weighted_interval=metric.weighted_interval,
        ),
        exists=metric.lago_id is not None,
    )
    BillableMetric.objects.filter(pk=metric.pk).update(lago_id=remote.lago_id)


@register("plan.sync", "lago")
def plan_sync_lago(plan_id: str) -> None:
    plan = Plan.objects.get(pk=plan_id)
    charges = list(plan.charges.select_related("metric"))
    for charge in charges:
        if charge.metric.lago_id is None:
            raise waiting_for(f"metric {charge.metric.code}")
    remote = lago.plan_upsert(
        plan=PlanData(
            code=plan.code,
            name=plan.name,
            description=plan.description,
            interval=plan.interval,
            amount_cents=plan.amount_cents,
            currency=plan.currency,
            pay_in_advance=plan.pay_in_advance,
            trial_days=plan.trial_days,
            charges=tuple(
                ChargeData(
                    billable_metric_lago_id=str(charge.metric.lago_id),
                    charge_model=charge.charge_model,
                    properties=charge.properties,
                    filters=tuple(
                        ChargeFilterData(
                            values={key: tuple(v) for key, v in item["values"].items()},
                            properties=item["properties"],
                            invoice_display_name=item.get("invoice_display_name"),
                        )
                        for item in charge.filters
                    ),
                    prorated=charge.prorated,
                )
                for charge in charges
            ),
            minimum_commitment=_commitment(plan, {}),
        ),
        exists=plan.lago_id is not None,
    )
    Plan.objects.filter(pk=plan.pk).update(lago_id=remote.lago_id)
    by_metric = {c.billable_metric_lago_id: c.lago_id for c in remote.charges}
    for charge in charges:
        lago_charge = by_metric.get(str(charge.metric.lago_id))
        if lago_charge:
            type(charge).objects.filter(pk=charge.pk).update(lago_id=lago_charge)


@register("subscription.sync", "lago")
def subscription_sync_lago(subscription_id: str) -> None:
    sub = Subscription.objects.select_related("plan", "next_plan", "customer").get(
        pk=subscription_id
    )
    for plan in filter(None, (sub.plan, sub.next_plan)):
        if plan.lago_id is None:
            raise waiting_for(f"plan {plan.code}")
    remote = lago.subscription_get(external_id=sub.external_id) or lago.subscription_get(
        external_id=sub.external_id, status="pending"
    )
    if sub.status in (S.CANCELED, S.TERMINATED):
        if remote is not None:
            lago.subscription_terminate(
                external_id=sub.external_id,
                pending=remote.status == "pending",
                invoice=remote.status == "active",
            )
        return
    wanted = SubscriptionData(
        external_id=sub.external_id,
        external_customer_id=sub.customer.external_id,
        plan_code=sub.plan.code,
        billing_time=sub.billing_time,
        subscription_at=sub.start_at,
        name=sub.name,
    )
    if (
        remote is not None
        and remote.status == "active"
        and remote.subscription_at != lago.as_lago_time(sub.start_at)
    ):
        # Ours was ended and restarted before this sync ran: end Lago's old run too.
        lago.subscription_terminate(external_id=sub.external_id, pending=False, invoice=True)
        remote = None
    if remote is None or remote.plan_code != sub.plan.code:
        remote = lago.subscription_create(
            subscription=replace(wanted, overrides=_plan_overrides(sub.plan, sub.overrides))
        )
    scheduled = remote.next_plan_code
    if sub.next_plan and scheduled != sub.next_plan.code:
        lago.subscription_create(
            subscription=replace(
                wanted,
                plan_code=sub.next_plan.code,
                overrides=_plan_overrides(sub.next_plan, sub.next_overrides),
            )
        )
    elif not sub.next_plan and scheduled and remote.status == "active":
        # Lago holds a downgrade as a pending subscription; ending it drops the change.
        lago.subscription_terminate(external_id=sub.external_id, pending=True, invoice=False)
    if sub.status == S.ACTIVE:
        # Lago's period ends on the last second of ours (ours is half-open).
        # An active subscription always has a current period (a database constraint).
        assert sub.current_period_end is not None
        ending = sub.current_period_end - timedelta(seconds=1) if sub.cancel_at_period_end else None
        overrides = _plan_overrides(sub.plan, sub.overrides)
        if remote.ending_at != lago.as_lago_time(ending) or overrides is not None:
            remote = lago.subscription_update(
                external_id=sub.external_id, ending_at=ending, overrides=overrides
            )
    Subscription.objects.filter(pk=sub.pk).update(lago_id=remote.lago_id)


def _plan_overrides(plan: Plan, overrides: dict) -> PlanOverrides | None:
    """Our overrides as Lago takes them: charges named by Lago's charge ids. None when
    nothing is overridden."""
    if not overrides:
        return None
    charges = []
    for charge in plan.charges.select_related("metric"):
        properties = (overrides.get("charges") or {}).get(charge.metric.code)
        if properties is None:
            continue
        if charge.lago_id is None:
            raise waiting_for(f"the charges of plan {plan.code}")
        charges.append(ChargeOverride(charge_lago_id=str(charge.lago_id), properties=properties))
    amount_cents = overrides.get("amount_cents")
    if amount_cents is None and not charges and "minimum_commitment" not in overrides:
        return None
    # Lago's overridden plan is a copy without the parent's commitment (Plans::
    # OverrideService): any override carries the commitment, the plan's or the override's.
    return PlanOverrides(
        amount_cents=amount_cents,
        charges=tuple(charges),
        minimum_commitment=_commitment(plan, overrides),
    )


def _commitment(plan: Plan, overrides: dict) -> CommitmentData | None:
    """The minimum commitment in force: the plan's, with the override's keys over it."""
    override = overrides.get("minimum_commitment") or {}
    amount = override.get("amount_cents", plan.minimum_commitment_amount_cents)
    if amount is None:
        return None
    return CommitmentData(
        amount_cents=amount,
        invoice_display_name=override.get(
            "invoice_display_name", plan.minimum_commitment_invoice_display_name
        ),
    )
