"""Writes to subscriptions (metrics and plans: subscriptions/catalog.py). Each transition
is one function that locks the row (`select_for_update`) and refuses an illegal move with
409 `invalid_transition`, naming the current state."""

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.exceptions import Conflict
from core.limits import MAX_FEE_CENTS
from customers.models import Customer
from subscriptions.advance import (
    anchor_of,
    bill_ahead,
    in_trial,
    nominal_bounds,
    open_advance,
    sync_trial_advance,
)
from subscriptions.backdating import check_start_at, close_catch_up
from subscriptions.charges import checked_commitment_override, validate_properties
from subscriptions.models import (
    Plan,
    Subscription,
    SubscriptionPeriod,
    SubscriptionPhase,
)
from subscriptions.periods import period_containing, yearly_amount_cents

S = Subscription.Status


# --- Subscriptions: the state machine --------------------------------------------------
def _refuse(subscription: Subscription, action: str) -> Conflict:
    state = subscription.status
    if state == S.ACTIVE and subscription.cancel_at_period_end:
        state = "active, canceling at period end"
    return Conflict(
        f"Cannot {action} subscription '{subscription.external_id}': it is {state}.",
        code="invalid_transition",
    )


def _locked(subscription: Subscription, now: datetime | None = None) -> Subscription:
    """The row, locked; with `now`, brought up to it first, so a change made just after a
    period boundary acts on the period the clock is in, not on the one that ended."""
    locked = Subscription.objects.select_for_update().select_related("plan").get(pk=subscription.pk)
    if now is not None:
        _advance(locked, now)
    return locked


def _period_end(subscription: Subscription) -> datetime:
    """The end of an active subscription's period (active_subscription_has_a_period)."""
    assert subscription.current_period_end is not None, f"{subscription} has no period"
    return subscription.current_period_end


def _set_period(subscription: Subscription, moment: datetime) -> None:
    start, end = period_containing(
        interval=subscription.plan.interval,
        billing_time=subscription.billing_time,
        started_at=anchor_of(subscription),
        moment=moment,
    )
    subscription.current_period_start, subscription.current_period_end = start, end


def _close_period(subscription: Subscription, end: datetime, reason: str) -> None:
    """Queue the current period, ending at `end`, for invoicing. Called before the plan
    or the dates change, so the period is priced and prorated as it was lived."""
    start = subscription.current_period_start
    if start is None or end <= start:
        return
    nominal_start, nominal_end = nominal_bounds(subscription, start)
    SubscriptionPeriod.objects.create(
        subscription=subscription,
        start=start,
        end=end,
        nominal_start=nominal_start,
        nominal_end=nominal_end,
        reason=reason,
        trial_ends_at=subscription.trial_ends_at,
    )


def _open_phase(subscription: Subscription, at: datetime, reason: str) -> None:
    SubscriptionPhase.objects.filter(subscription=subscription, ended_at__isnull=True).update(
        ended_at=at
    )
    SubscriptionPhase.objects.create(
        subscription=subscription,
        plan=subscription.plan,
        overrides=subscription.overrides,
        started_at=at,
        reason=reason,
    )


def _close_phase(subscription: Subscription, at: datetime) -> None:
    SubscriptionPhase.objects.filter(subscription=subscription, ended_at__isnull=True).update(
        ended_at=at
    )


def _save(subscription: Subscription) -> Subscription:
    subscription.save()
    return subscription


def _activate(subscription: Subscription, at: datetime, reason: str) -> None:
    """Start it, or restart it after it ended: started_at keeps the first start, and a
    trial is granted once, not again at each reactivation."""
    subscription.status = S.ACTIVE
    subscription.billing_anchor_at = at
    if subscription.started_at is None:
        subscription.started_at = at
        trial_days = subscription.plan.trial_days
        subscription.trial_ends_at = at + timedelta(days=trial_days) if trial_days else None
    _set_period(subscription, at)
    _open_phase(subscription, at, reason)


@transaction.atomic
def subscription_create(
    *,
    external_id: str,
    customer: Customer,
    plan: Plan,
    billing_time: str = "calendar",
    start_at: datetime | None = None,
    overrides: dict[str, Any] | None = None,
    name: str = "",
    bill_past_periods: bool = False,
) -> Subscription:
    now = timezone.now()
    start_at = start_at or now
    check_start_at(plan, billing_time, start_at, now, bill_past_periods)
    _share_lock(plan)
    _check_currency(customer, plan)
    subscription = Subscription(
        external_id=external_id,
        customer=customer,
        plan=plan,
        billing_time=billing_time,
        start_at=start_at,
        overrides=_checked_overrides(plan, overrides or {}),
        name=name or "",
        status=S.PENDING,
    )
    try:
        with transaction.atomic():
            subscription.save()
            if start_at <= now:
                _activate(subscription, start_at, SubscriptionPhase.Reason.CREATED)
                if bill_past_periods and close_catch_up(subscription, now):
                    _set_period(subscription, now)
                subscription.save()
                open_advance(subscription)
    except IntegrityError as exc:
        raise Conflict(
            f"A subscription with external_id '{external_id}' exists.", code="subscription_exists"
        ) from exc
    return subscription


def _check_currency(customer: Customer, plan: Plan) -> None:
    if customer.currency and customer.currency != plan.currency:
        raise Conflict(
            f"Plan '{plan.code}' is in {plan.currency}; customer '{customer.external_id}' "
            f"pays in {customer.currency}.",
            code="currency_mismatch",
        )


def _checked_overrides(plan: Plan, overrides: dict[str, Any]) -> dict[str, Any]:
    unknown = set(overrides) - {"amount_cents", "charges", "minimum_commitment"}
    if unknown:
        raise ValidationError({"overrides": f"Unknown overrides: {sorted(unknown)}."})
    if "amount_cents" in overrides:
        amount = overrides["amount_cents"]
        if (
            not isinstance(amount, int)
            or isinstance(amount, bool)
            or not 0 <= amount <= MAX_FEE_CENTS
        ):
            raise ValidationError(
                {"overrides": f"amount_cents must be an integer from 0 to {MAX_FEE_CENTS}."}
            )
    charges = overrides.get("charges") or {}
    if not isinstance(charges, dict):
        raise ValidationError({"overrides": "charges must map metric codes to properties."})
    models = {
        c.metric.code: (c.charge_model, c.metric.aggregation)
        for c in plan.charges.select_related("metric")
    }
    for code, properties in charges.items():
        if code not in models:
            raise ValidationError({"overrides": f"Plan '{plan.code}' has no charge on '{code}'."})
        try:
            validate_properties(models[code][0], properties, aggregation=models[code][1])
        except ValidationError as exc:
            raise ValidationError({"overrides": exc.messages}) from exc
    return checked_commitment_override(overrides)


@transaction.atomic
def subscription_update(
    *,
    subscription: Subscription,
    plan: Plan | None = None,
    overrides: dict[str, Any] | None = None,
    name: str | None = None,
) -> Subscription:
    """Plan changes as Lago makes them: an upgrade (the same or a higher yearly fixed
    amount than what is paid now) takes effect now and the old plan's period is prorated; a
    downgrade is scheduled for the end of the current period, with its overrides."""
    now = timezone.now()
    locked = _locked(subscription, now)
    if locked.status in (S.CANCELED, S.TERMINATED):
        raise _refuse(locked, "change")
    if name is not None:
        locked.name = name
    if plan is None or plan.pk == locked.plan_id:
        if plan is not None:
            locked.next_plan, locked.next_overrides = None, {}  # the scheduled change is dropped
        if overrides is not None:
            locked.overrides = _checked_overrides(locked.plan, overrides)
            if locked.status == S.ACTIVE:
                _open_phase(locked, now, SubscriptionPhase.Reason.OVERRIDES)
        return _save(locked)
    _share_lock(plan)
    _check_currency(locked.customer, plan)
    if plan.currency != locked.plan.currency:
        raise Conflict("A plan change cannot change the currency.", code="currency_mismatch")
    new_overrides = _checked_overrides(plan, overrides or {})
    # Decided on what is paid now, before anything changes, as Lago decides it.
    if locked.status == S.PENDING:
        locked.plan, locked.overrides = plan, new_overrides
        locked.next_plan, locked.next_overrides = None, {}
    elif _is_upgrade(locked, plan, new_overrides):
        # The billing period keeps its dates; a new interval starts a new period now.
        was_in_advance = locked.plan.pay_in_advance
        if plan.interval != locked.plan.interval:
            _close_period(locked, now, SubscriptionPeriod.Reason.UPGRADE)
            locked.billing_anchor_at = now
        locked.plan, locked.overrides = plan, new_overrides
        locked.next_plan, locked.next_overrides = None, {}
        _open_phase(locked, now, SubscriptionPhase.Reason.UPGRADE)
        _set_period(locked, now)
        # Billed at once: the new plan's fee to the period's end, and the old plan's
        # unused prepaid days credited (Lago: #activate_for_upgrade, not in a trial).
        if in_trial(locked, now):
            sync_trial_advance(locked, now)
        elif was_in_advance or plan.pay_in_advance:
            bill_ahead(locked, now)
    else:
        locked.next_plan, locked.next_overrides = plan, new_overrides
    return _save(locked)


def _is_upgrade(subscription: Subscription, plan: Plan, overrides: dict[str, Any]) -> bool:
    current = yearly_amount_cents(
        interval=subscription.plan.interval, amount_cents=subscription.amount_cents
    )
    wanted = yearly_amount_cents(
        interval=plan.interval, amount_cents=int(overrides.get("amount_cents", plan.amount_cents))
    )
    return wanted >= current


def _share_lock(plan: Plan) -> None:
    """Hold the plan against re-pricing (plan_update locks it FOR UPDATE) while a
    subscription is put on it; concurrent subscriptions do not block each other."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {Plan._meta.db_table} WHERE id = %s FOR SHARE", [str(plan.pk)]
        )


@transaction.atomic
def subscription_cancel(*, subscription: Subscription, at_period_end: bool = True) -> Subscription:
    now = timezone.now()
    locked = _locked(subscription, now)
    if locked.status == S.PENDING:
        locked.status, locked.canceled_at, locked.ended_at = S.CANCELED, now, now
        return _save(locked)
    if locked.status != S.ACTIVE or (at_period_end and locked.cancel_at_period_end):
        raise _refuse(locked, "cancel")
    if at_period_end:
        locked.cancel_at_period_end = True
        locked.canceled_at = now
        locked.next_plan, locked.next_overrides = None, {}
        return _save(locked)
    return _terminate(locked, now)


def _terminate(locked: Subscription, at: datetime) -> Subscription:
    _close_period(locked, at, SubscriptionPeriod.Reason.TERMINATED)
    locked.status = S.TERMINATED
    locked.terminated_at = locked.ended_at = at
    locked.cancel_at_period_end = False
    locked.next_plan, locked.next_overrides = None, {}
    _close_phase(locked, at)
    sync_trial_advance(locked, at)
    return _save(locked)


@transaction.atomic
def subscription_reactivate(*, subscription: Subscription) -> Subscription:
    """Undo a pending cancellation, or restart an ended subscription as a new period."""
    now = timezone.now()
    locked = _locked(subscription, now)
    if locked.status == S.ACTIVE and locked.cancel_at_period_end:
        locked.cancel_at_period_end = False
        locked.canceled_at = None
        return _save(locked)
    if locked.status not in (S.CANCELED, S.TERMINATED):
        raise _refuse(locked, "reactivate")
    _check_currency(locked.customer, locked.plan)
    locked.canceled_at = locked.terminated_at = locked.ended_at = None
    locked.cancel_at_period_end = False
    # start_at names this run (Lago's subscription_at: the sync ends Lago's old run by it);
    # started_at keeps the first start.
    locked.start_at = now
    _activate(locked, now, SubscriptionPhase.Reason.REACTIVATED)
    open_advance(locked)
    return _save(locked)


# --- Time passing: the beat job's work -------------------------------------------------
@transaction.atomic
def subscription_advance(*, subscription: Subscription, now: datetime | None = None) -> str:
    """Bring one subscription up to `now`: start it, or close the periods that ended,
    applying a scheduled downgrade or cancellation at its period end. Idempotent: it acts
    only on what is due, under the row lock, so running it twice (or late) changes nothing
    more."""
    now = now or timezone.now()
    locked = _locked(subscription)
    outcome = _advance(locked, now)
    if outcome != "not due":
        _save(locked)
    return outcome


def _advance(locked: Subscription, now: datetime) -> str:
    if locked.status == S.PENDING:
        if locked.start_at > now:
            return "not due"
        _activate(locked, locked.start_at, SubscriptionPhase.Reason.STARTED)
        open_advance(locked)
        # Started late (beat was behind)? Its periods since then close one by one below,
        # so no row spans a boundary.
        outcome = "started"
    elif locked.status != S.ACTIVE or _period_end(locked) > now:
        return "not due"
    else:
        outcome = "renewed"
    while locked.status == S.ACTIVE and _period_end(locked) <= now:
        boundary = _period_end(locked)
        _close_period(
            locked,
            boundary,
            SubscriptionPeriod.Reason.CANCELED
            if locked.cancel_at_period_end
            else SubscriptionPeriod.Reason.RENEWED,
        )
        if locked.cancel_at_period_end:
            locked.status, locked.ended_at = S.CANCELED, boundary
            locked.cancel_at_period_end = False
            _close_phase(locked, boundary)
            sync_trial_advance(locked, boundary)
            outcome = "canceled"
            break
        next_plan = locked.next_plan  # a downgrade scheduled for this period end
        if next_plan is not None:
            if next_plan.interval != locked.plan.interval:
                locked.billing_anchor_at = boundary
            locked.plan, locked.overrides = next_plan, locked.next_overrides
            locked.next_plan, locked.next_overrides = None, {}
            _open_phase(locked, boundary, SubscriptionPhase.Reason.DOWNGRADE)
            outcome = "downgraded"
        _set_period(locked, boundary)
        if next_plan is not None:
            sync_trial_advance(locked, boundary)
    return outcome


def subscription_as_of(*, subscription: Subscription, now: datetime | None = None) -> Subscription:
    """The subscription as the clock has it at `now`: what is due (a start, ended periods)
    is applied first, so a read or an invoice right after a period boundary does not see
    the ended period as current while the beat job has yet to run."""
    now = now or timezone.now()
    due = (subscription.status == S.PENDING and subscription.start_at <= now) or (
        subscription.status == S.ACTIVE and _period_end(subscription) <= now
    )
    if due:
        subscription_advance(subscription=subscription, now=now)
        subscription.refresh_from_db()
    return subscription


@transaction.atomic
def subscription_ended_by_engine(*, subscription: Subscription, at: datetime) -> Subscription:
    """Lago (as the engine) ended the subscription: follow it. An ending that we asked for
    at the period end is a cancellation; any other is a termination."""
    # Brought up to Lago's moment first, so the ending closes the period it falls in.
    locked = _locked(subscription, at)
    if locked.status != S.ACTIVE:
        return locked
    if locked.cancel_at_period_end:
        _close_period(locked, at, SubscriptionPeriod.Reason.CANCELED)
        locked.status, locked.ended_at, locked.cancel_at_period_end = S.CANCELED, at, False
        _close_phase(locked, at)
        sync_trial_advance(locked, at)
        return _save(locked)
    return _terminate(locked, at)
