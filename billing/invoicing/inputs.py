"""What the rating engine reads from the database: the phases that cover a stretch of a
subscription's time, each with its plan, overrides and usage.

One path for every reader, so the usage read, the invoice of a closed period and the
reconciliation of a Lago invoice price the same time the same way: phase by phase, each
charge on the usage of its own phase.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import TypedDict
from uuid import UUID

from django.db.models import Q

from billing.invoicing.rating import (
    ENDED_BY_RENEWAL,
    ENDED_BY_TERMINATION,
    ENDED_BY_UPGRADE,
    ChargeBucket,
    ChargeUsage,
    PeriodInput,
    PhaseUsage,
    day_of,
)
from billing.usage.selectors import (
    UsageBucket,
    UsageWindow,
    event_amounts_cents,
    event_values,
    prorated_units,
    usage_buckets,
    usage_units,
)
from subscriptions.charges import filter_display_name, filter_precedence, group_keys
from subscriptions.models import (
    BillableMetric,
    Charge,
    Plan,
    Subscription,
    SubscriptionPeriod,
    SubscriptionPhase,
)
from subscriptions.periods import nominal_period


class Catalog:
    """Metrics and plan charges, read once per billing run instead of once per invoice.
    Plans and metrics are frozen while any of their time is not invoiced, so what a run
    reads at its start holds for every period it rates."""

    def __init__(self) -> None:
        self._load()

    def _load(self) -> None:
        self.metrics: dict[UUID, BillableMetric] = {m.pk: m for m in BillableMetric.objects.all()}
        self.metrics_by_code = {m.code: m for m in self.metrics.values()}
        self._charges: dict[UUID, list[Charge]] = {}

    def metric(self, pk: UUID) -> BillableMetric:
        if pk not in self.metrics:  # created since the run began
            self._load()
        return self.metrics[pk]

    def charges(self, plan: Plan) -> list[Charge]:
        if plan.pk not in self._charges:
            self._charges[plan.pk] = list(plan.charges.all())
        return self._charges[plan.pk]


@dataclass
class Prefetched:
    """What a billing run's page read for all its periods at once, so rating a period
    costs no query: each subscription's phases (with their plans) and period rows, and
    the usage of each window a phase covers. Anything missing is read as usual."""

    phases: dict[UUID, list[SubscriptionPhase]] = field(default_factory=dict)
    periods: dict[UUID, list[SubscriptionPeriod]] = field(default_factory=dict)
    units: dict[UsageWindow, dict[UUID, Decimal]] = field(default_factory=dict)

    def covering(self, subscription_id: UUID, start: datetime, end: datetime):
        """_covering_phases(), from what was read (same bounds, same order)."""
        return [
            phase
            for phase in self.phases.get(subscription_id, [])
            if phase.started_at <= end and (phase.ended_at is None or phase.ended_at > start)
        ]


def _covering_phases(
    subscription: Subscription,
    start: datetime,
    end: datetime,
    prefetched: Prefetched | None = None,
) -> list[SubscriptionPhase]:
    """Every phase that covers [start, end] (its end too: the plan renewed into), in one read."""
    if prefetched is not None and subscription.pk in prefetched.phases:
        return prefetched.covering(subscription.pk, start, end)
    return list(
        SubscriptionPhase.objects.filter(subscription=subscription, started_at__lte=end)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start))
        .select_related("plan")
        .order_by("started_at", "id")
    )


def _pieces(
    subscription: Subscription,
    phases: list[SubscriptionPhase],
    start: datetime,
    end: datetime,
    catalog: Catalog,
    prefetched: Prefetched | None = None,
) -> list[tuple[SubscriptionPhase, PhaseUsage]]:
    pieces = []
    for phase in phases:
        piece_start, piece_end = max(phase.started_at, start), min(phase.ended_at or end, end)
        if piece_end > piece_start:
            units = (
                prefetched.units.get((subscription.pk, piece_start, piece_end))
                if prefetched is not None
                else None
            )
            usage = _phase_usage(
                subscription, phase, piece_start, piece_end, catalog, with_usage=True, units=units
            )
            pieces.append((phase, usage))
    return pieces


ENDED_BY: dict[str, str] = {
    SubscriptionPeriod.Reason.TERMINATED.value: ENDED_BY_TERMINATION,
    SubscriptionPeriod.Reason.UPGRADE.value: ENDED_BY_UPGRADE,
}


def period_input(
    *,
    subscription: Subscription,
    period: SubscriptionPeriod,
    catalog: Catalog | None = None,
    prefetched: Prefetched | None = None,
) -> PeriodInput:
    """What the rating engine needs for one closed period (or one `advance` moment).
    `prefetched`: what a billing run's page read at once; it changes no figure."""
    catalog = catalog or Catalog()
    if period.reason == SubscriptionPeriod.Reason.ADVANCE:
        return _advance_input(subscription, period, catalog)
    phases = _covering_phases(subscription, period.start, period.end, prefetched)
    pairs = _pieces(subscription, phases, period.start, period.end, catalog, prefetched)
    rows = prefetched.periods.get(subscription.pk) if prefetched is not None else None
    pieces = _mark_billed_ahead(subscription, period, pairs, rows)
    if period.periods > 1:
        # A catch-up row stands for several periods: its nominal span is all of them,
        # so the fee prorated over it is that many periods' fee.
        pieces = [replace(p, amount_cents=p.amount_cents * period.periods) for p in pieces]
        pieces = [
            replace(p, minimum_commitment_cents=p.minimum_commitment_cents * period.periods)
            if p.minimum_commitment_cents
            else p
            for p in pieces
        ]
    ended_by = ENDED_BY.get(period.reason, ENDED_BY_RENEWAL)
    if period.reason == SubscriptionPeriod.Reason.CANCELED and period.end < period.nominal_end:
        ended_by = ENDED_BY_TERMINATION  # ended by Lago before the period's end
    return PeriodInput(
        currency=subscription.plan.currency,
        start=period.start,
        end=period.end,
        nominal_start=period.nominal_start,
        nominal_end=period.nominal_end,
        phases=pieces,
        # The trial as it was when the period closed, not after a later reactivation.
        trial_ends_at=period.trial_ends_at,
        ended_by=ended_by,
        **_next_phase(subscription, period, phases, catalog),
    )


def _mark_billed_ahead(
    subscription: Subscription,
    period: SubscriptionPeriod,
    pairs: list[tuple[SubscriptionPhase, PhaseUsage]],
    prefetched_rows: list[SubscriptionPeriod] | None = None,
) -> list[PhaseUsage]:
    """Which pay-in-advance stretches had their fee billed ahead, so the period's end
    invoice does not bill them again: the one a renewal invoice billed (the period's first
    stretch), those an `advance` moment billed (a start, a trial's end, an upgrade), and
    a change of overrides, which continues the prepaid stretch before it (Lago bills
    nothing for it: Subscriptions::UpdateService swaps the plan). Any other was not billed
    ahead (a period queued before fees were billed ahead) and is billed on this invoice."""
    if not any(piece.pay_in_advance for _, piece in pairs):
        return [piece for _, piece in pairs]
    R = SubscriptionPeriod.Reason
    # A renewal in the middle of a trial billed nothing ahead; the trial's end did.
    in_trial = period.trial_ends_at is not None and day_of(period.trial_ends_at) > day_of(
        period.start
    )
    if prefetched_rows is not None:
        renewed_into = not in_trial and any(
            r.end == period.start and r.reason == R.RENEWED for r in prefetched_rows
        )
        moments = [
            r.start
            for r in prefetched_rows
            if r.reason == R.ADVANCE and period.start <= r.start < period.end
        ]
    else:
        rows = SubscriptionPeriod.objects.filter(subscription=subscription)
        renewed_into = not in_trial and rows.filter(end=period.start, reason=R.RENEWED).exists()
        moments = list(
            rows.filter(
                reason=R.ADVANCE, start__gte=period.start, start__lt=period.end
            ).values_list("start", flat=True)
        )
    marked: list[PhaseUsage] = []
    for phase, piece in pairs:
        ahead = (piece.start == period.start and renewed_into) or any(
            piece.start <= moment < piece.end for moment in moments
        )
        if (
            not ahead
            and phase.reason == SubscriptionPhase.Reason.OVERRIDES
            and marked
            and marked[-1].billed_ahead
        ):
            # Prepaid by the stretch before it, at what that stretch paid: a credit for
            # unused days gives back what was billed, and a commitment counts it once.
            piece = replace(piece, continues_prepaid=True, amount_cents=marked[-1].amount_cents)
            ahead = True
        marked.append(replace(piece, billed_ahead=ahead))
    return marked


def _advance_input(
    subscription: Subscription, period: SubscriptionPeriod, catalog: Catalog
) -> PeriodInput:
    """An `advance` moment: the pay-in-advance fee of the plan in effect then, to the end
    of the period it falls in (the row's nominal bounds), and on an upgrade, the unused
    days of the prepaid plan that ended at that moment."""
    at = period.start
    phases = list(
        SubscriptionPhase.objects.filter(subscription=subscription, started_at__lte=at)
        .filter(Q(ended_at__isnull=True) | Q(ended_at__gte=at))
        .select_related("plan")
        .order_by("started_at", "id")
    )
    current = [p for p in phases if p.ended_at is None or p.ended_at > at]
    ended = [p for p in phases if p.ended_at == at and p.started_at < at]
    billed: _NextPhase = {}
    if current and current[-1].plan.pay_in_advance:
        billed["next_phase"] = _phase_usage(
            subscription, current[-1], at, period.nominal_end, catalog, with_usage=False
        )
        billed["next_nominal"] = (period.nominal_start, period.nominal_end)
    if ended and ended[-1].plan.pay_in_advance:
        credit_nominal = _credited_period(subscription, period)
        if credit_nominal is not None:
            credit = _phase_usage(
                subscription, ended[-1], at, credit_nominal[1], catalog, with_usage=False
            )
            paid = _prepaid_by(subscription, ended[-1], credit_nominal[0])
            billed["credit"] = replace(credit, amount_cents=paid)
            billed["credit_nominal"] = credit_nominal
    return PeriodInput(
        currency=subscription.plan.currency,
        start=at,
        end=at,
        nominal_start=period.nominal_start,
        nominal_end=period.nominal_end,
        phases=[],
        trial_ends_at=period.trial_ends_at,
        advance=True,
        **billed,
    )


def _prepaid_by(subscription: Subscription, phase: SubscriptionPhase, since: datetime) -> int:
    """The fee billed ahead for `phase`'s time in the period from `since`: a change of
    overrides bills nothing and continues the prepaid stretch before it, so the amount is
    that of the phase the stretch began with (not the new override, never billed)."""
    while phase.reason == SubscriptionPhase.Reason.OVERRIDES and phase.started_at > since:
        before = (
            SubscriptionPhase.objects.filter(subscription=subscription, ended_at=phase.started_at)
            .select_related("plan")
            .order_by("-started_at")
            .first()
        )
        if before is None or before.plan_id != phase.plan_id:
            break
        phase = before
    return int((phase.overrides or {}).get("amount_cents", phase.plan.amount_cents))


def _credited_period(
    subscription: Subscription, period: SubscriptionPeriod
) -> tuple[datetime, datetime] | None:
    """The whole bounds of the prepaid period an upgrade at this moment cut, if its fee
    was billed ahead (not so for a period queued before fees were billed ahead)."""
    at = period.start
    rows = SubscriptionPeriod.objects.filter(subscription=subscription)
    # An upgrade to another interval closed the old period at this moment.
    closed = rows.filter(end=at, reason=SubscriptionPeriod.Reason.UPGRADE).first()
    start, nominal = (
        (closed.start, (closed.nominal_start, closed.nominal_end))
        if closed is not None
        else (period.nominal_start, (period.nominal_start, period.nominal_end))
    )
    paid = (
        rows.filter(
            reason=SubscriptionPeriod.Reason.RENEWED, end__gte=nominal[0], end__lte=start
        ).exists()
        or rows.filter(
            reason=SubscriptionPeriod.Reason.ADVANCE, start__gte=nominal[0], start__lt=at
        ).exists()
    )
    return nominal if paid else None


def window_input(
    *, subscription: Subscription, start: datetime, end: datetime, catalog: Catalog | None = None
) -> PeriodInput:
    """What the rating engine needs for any stretch [start, end), open or closed: the
    usage read of the current period prices its charges exactly as the period's invoice
    will. Fixed fees are the invoice's business: this input carries no prepaid state."""
    catalog = catalog or Catalog()
    phases = _covering_phases(subscription, start, end)
    return PeriodInput(
        currency=subscription.plan.currency,
        start=start,
        end=end,
        # Only fixed fees are prorated against nominal bounds, and the read has none.
        nominal_start=start,
        nominal_end=end,
        phases=[piece for _, piece in _pieces(subscription, phases, start, end, catalog)],
        trial_ends_at=subscription.trial_ends_at,
    )


def _phase_usage(
    subscription: Subscription,
    phase: SubscriptionPhase,
    start: datetime,
    end: datetime,
    catalog: Catalog,
    *,
    with_usage: bool,
    units: dict[UUID, Decimal] | None = None,
) -> PhaseUsage:
    plan = phase.plan
    overrides = phase.overrides or {}
    charge_overrides = overrides.get("charges") or {}
    charges = []
    if with_usage:
        if units is None:
            units = usage_units(
                subscription=subscription, start=start, end=end, metrics=catalog.metrics
            )
        for charge in catalog.charges(plan):
            metric = catalog.metric(charge.metric_id)
            charges.append(
                ChargeUsage(
                    metric_code=metric.code,
                    charge_model=charge.charge_model,
                    properties=charge_overrides.get(metric.code, charge.properties),
                    units=(
                        prorated_units(
                            subscription=subscription, metric=metric, start=start, end=end
                        )
                        if charge.prorated
                        else units.get(metric.pk, Decimal(0))
                    ),
                    # Percentage prices events one by one (free events, fixed fees,
                    # per-transaction min/max), whatever the aggregation.
                    event_values=(
                        event_values(subscription=subscription, metric=metric, start=start, end=end)
                        if charge.charge_model == Charge.Model.PERCENTAGE
                        else ()
                    ),
                    aggregation=metric.aggregation,
                    precise_total_amount_cents=(
                        event_amounts_cents(
                            subscription=subscription, metric=metric, start=start, end=end
                        )
                        if charge.charge_model == Charge.Model.DYNAMIC
                        else Decimal(0)
                    ),
                    buckets=_charge_buckets(
                        subscription,
                        charge,
                        metric,
                        charge_overrides.get(metric.code, charge.properties),
                        start,
                        end,
                    ),
                )
            )
    return PhaseUsage(
        plan_code=plan.code,
        plan_name=plan.name,
        amount_cents=int(overrides.get("amount_cents", plan.amount_cents)),
        pay_in_advance=plan.pay_in_advance,
        start=start,
        end=end,
        charges=charges,
        **_commitment(plan, overrides),
    )


class _Commitment(TypedDict):
    minimum_commitment_cents: int | None
    minimum_commitment_name: str


def _commitment(plan: Plan, overrides: dict) -> _Commitment:
    """The plan's minimum commitment, or the subscription's override of it (its missing
    keys are the plan's; subscriptions.sync sends Lago the merged commitment)."""
    override = overrides.get("minimum_commitment") or {}
    amount = override.get("amount_cents", plan.minimum_commitment_amount_cents)
    return {
        "minimum_commitment_cents": None if amount is None else int(amount),
        "minimum_commitment_name": override.get(
            "invoice_display_name", plan.minimum_commitment_invoice_display_name
        ),
    }


def _charge_buckets(
    subscription: Subscription,
    charge: Charge,
    metric: BillableMetric,
    properties: dict,
    start: datetime,
    end: datetime,
) -> tuple[ChargeBucket, ...]:
    """A charge's usage per filter and pricing group (Lago's charge filters and
    pricing_group_keys), in one query; none when it prices by neither. Each filter in
    its order, then the default (the events no filter matches), as Lago lists its fees."""
    keys: dict[int | None, list[str]] = {
        index: group_keys(item["properties"]) for index, item in enumerate(charge.filters)
    }
    keys[None] = group_keys(properties)
    if not charge.filters and not keys[None]:
        return ()
    found = usage_buckets(
        subscription=subscription,
        metric=metric,
        start=start,
        end=end,
        filters=filter_precedence(charge.filters, metric.filters),
        group_keys=keys,
        with_values=charge.charge_model == Charge.Model.PERCENTAGE,
    )
    buckets = []
    priced: list[tuple[int | None, str, dict]] = [
        (index, filter_display_name(item), item["properties"])
        for index, item in enumerate(charge.filters)
    ]
    for index, name, own in [*priced, (None, "", properties)]:
        mine = [b for b in found if b.filter_index == index] or [
            UsageBucket(index, dict.fromkeys(keys[index]), Decimal(0), 0)
        ]
        buckets += [
            ChargeBucket(
                filter=name,
                grouped_by=bucket.grouped_by,
                properties=own,
                units=bucket.units,
                events=bucket.events,
                event_values=bucket.values,
                precise_total_amount_cents=bucket.precise_total_amount_cents,
            )
            for bucket in mine
        ]
    return tuple(buckets)


class _NextPhase(TypedDict, total=False):
    next_phase: PhaseUsage
    next_nominal: tuple[datetime, datetime]
    credit: PhaseUsage
    credit_nominal: tuple[datetime, datetime]


def _next_phase(
    subscription: Subscription,
    period: SubscriptionPeriod,
    phases: list[SubscriptionPhase],
    catalog: Catalog,
) -> _NextPhase:
    """The plan the subscription renewed into at the period's end, over the next period
    (and that period's nominal bounds): what a pay-in-advance fee bills ahead."""
    if period.reason != SubscriptionPeriod.Reason.RENEWED:
        return {}
    # A downgrade takes effect at the period's end, with the renewal; any other change at
    # that moment (an upgrade) came after it and is billed at once by its `advance` row.
    downgraded = [
        p
        for p in phases
        if p.started_at == period.end and p.reason == SubscriptionPhase.Reason.DOWNGRADE
    ]
    renewed = [
        p
        for p in phases
        if p.started_at < period.end and (p.ended_at is None or p.ended_at >= period.end)
    ]
    covering = downgraded or renewed
    phase = covering[-1] if covering else None
    if phase is None or not phase.plan.pay_in_advance:
        return {}
    # Periods are closed only once the subscription has started (subscriptions.services).
    assert subscription.billing_anchor_at is not None
    nominal_start, nominal_end = nominal_period(
        interval=phase.plan.interval,
        billing_time=subscription.billing_time,
        started_at=subscription.billing_anchor_at,
        moment=period.end,
    )
    return {
        "next_phase": _phase_usage(
            subscription, phase, period.end, nominal_end, catalog, with_usage=False
        ),
        "next_nominal": (nominal_start, nominal_end),
    }
