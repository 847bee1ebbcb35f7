from typing import Any

from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.response import Response
from rest_framework.settings import api_settings

from billing.usage import services as usage
from billing.usage.api.serializers import (
    UsageBatchResultSerializer,
    UsageBatchSerializer,
    UsageEventSerializer,
    UsageRecordSerializer,
)
from billing.usage.models import UsageRecord
from core.exceptions import Conflict, UnprocessableEntity
from core.pagination import CursorPagination
from core.schema import codes
from core.views import ApiViewSet


class UsagePagination(CursorPagination):
    ordering = ("-timestamp", "-id")


class UsageFilter(filters.FilterSet):
    # A subscription is required: no read scans every subscription's usage.
    subscription = filters.CharFilter(
        field_name="subscription__external_id",
        required=True,
        help_text="The subscription's external_id (required).",
    )
    metric = filters.CharFilter(field_name="metric__code", help_text="The metric's code.")
    to = filters.IsoDateTimeFilter(
        field_name="timestamp", lookup_expr="lt", help_text="Events before this time."
    )

    class Meta:
        model = UsageRecord
        fields: list[str] = []


# `from` is a Python keyword; the timestamp bounds also select the partitions read.
UsageFilter.base_filters["from"] = filters.IsoDateTimeFilter(
    field_name="timestamp", lookup_expr="gte", help_text="Events at or after this time."
)

# The codes of an event the domain refuses (RecordUsage; a batch's `invalid` results).
EVENT_CONFLICTS = {
    "transaction_id_conflict": "This `transaction_id` was recorded with other content "
    "(`attr` is `transaction_id`).",
    "period_closed": "The event falls in a period already invoiced (`attr` is `timestamp`).",
}
EVENT_UNPROCESSABLE = {
    "unknown_subscription": "No subscription with this `external_id` (`attr` is `subscription`).",
    "subscription_not_billable": "The subscription is not `active`.",
    "unknown_metric": "No billable metric with this `code` (`attr` is `metric`).",
    "timestamp_in_future": "`timestamp` is more than 5 minutes ahead.",
    "timestamp_before_subscription": "`timestamp` is before the subscription started.",
    "missing_property": "The metric aggregates `properties.<field_name>`, which is "
    "missing (`attr` names it).",
    "property_not_numeric": "That property is not a number.",
    "value_out_of_range": "That value is not finite, or past 10^12, or has more than 12 "
    "decimal places.",
    "negative_value_not_allowed": "That value is negative and the metric does not allow "
    "negative values.",
}


# One serializer renders every answer: building its fields per request (DRF copies them
# for each new serializer) was a tenth of a usage event's time. to_representation keeps
# no state, so threads may share it.
_RECORD = UsageRecordSerializer()


@extend_schema(tags=["Usage"])
class UsageViewSet(mixins.ListModelMixin, ApiViewSet):
    """Usage events: recorded once by transaction_id, read back per subscription."""

    serializer_class = UsageRecordSerializer
    queryset = UsageRecord.objects.select_related("subscription", "metric")
    filterset_class = UsageFilter
    pagination_class = UsagePagination

    @extend_schema(
        operation_id="ListUsage",
        summary="List a subscription's usage events",
        description="The usage events recorded for one subscription, newest first by "
        "`timestamp`, cursor paginated; narrow them to a metric and to a time range "
        "(`from` inclusive, `to` exclusive).",
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="RecordUsage",
        summary="Record a usage event",
        description="Records one usage event, exactly once per `transaction_id`: sending "
        "the same event again answers 200 with the record stored the first time and "
        "counts nothing twice. The event is checked at once against the subscription and "
        "the metric (422 below), rather than refused later. `timestamp` defaults to now. "
        "When Lago is the billing engine, recorded events are forwarded to it in the "
        "background.",
        request=UsageEventSerializer,
        responses={
            201: OpenApiResponse(UsageRecordSerializer, description="Recorded."),
            200: OpenApiResponse(
                UsageRecordSerializer,
                description="Already recorded with the same content: the stored record.",
            ),
            409: codes(**EVENT_CONFLICTS),
            422: codes(**EVENT_UNPROCESSABLE),
        },
    )
    def create(self, request, *args, **kwargs):
        event, errors = usage.parse_event(request.data)
        if event is None:  # (None, errors) or (event, [])
            raise ValidationError(_field_errors(errors))
        (result,) = usage.usage_record_batch(events=[event], with_records=True)
        if result.status == "created":
            return Response(
                _RECORD.to_representation(result.record), status=status.HTTP_201_CREATED
            )
        if result.status == "duplicate":
            stored = self.get_queryset().filter(transaction_id=result.transaction_id).first()
            return Response(_RECORD.to_representation(stored), status=status.HTTP_200_OK)
        error = result.errors[0]
        if result.status == "conflict" or error["code"] == usage.PERIOD_CLOSED:
            raise Conflict(error["detail"], code=error["code"], attr=error["attr"])
        raise UnprocessableEntity(error["detail"], code=error["code"], attr=error["attr"])

    @extend_schema(
        operation_id="RecordUsageBatch",
        summary="Record usage events in a batch",
        description="Records 1 to 1,000 events, each as RecordUsage would, and answers 200 "
        "with one result per event, in the order sent: `created`; `duplicate` (already "
        "recorded with this content); `conflict` or `invalid`, with `errors` in the error "
        "item shape (`code`, `detail`, `attr`) and the codes of RecordUsage's 400, 409 and "
        "422. One bad event rejects only itself: the valid ones are stored.",
        request=UsageBatchSerializer,
        responses=UsageBatchResultSerializer,
    )
    @action(detail=False, methods=["post"], filterset_class=None)
    def batch(self, request):
        events = request.data.get("events") if isinstance(request.data, dict) else None
        if not isinstance(events, list) or not 1 <= len(events) <= usage.MAX_BATCH:
            raise ValidationError(
                {"events": [f"A list of 1 to {usage.MAX_BATCH} events is required."]}
            )
        valid: list[dict[str, Any]] = []
        answers: list[dict[str, Any] | None] = []
        for raw in events:
            event, errors = usage.parse_event(raw)
            if event is not None:
                valid.append(event)
                answers.append(None)
            else:
                tid = raw.get("transaction_id") if isinstance(raw, dict) else ""
                answers.append(
                    {"transaction_id": str(tid or "")[:255], "status": "invalid", "errors": errors}
                )
        recorded = iter(usage.usage_record_batch(events=valid) if valid else [])
        results = [answer or _result(next(recorded)) for answer in answers]
        return Response({"results": results})


def _field_errors(errors: list[dict[str, Any]]) -> dict[str, list[ErrorDetail]]:
    """parse_event's errors as DRF's field errors, each keeping its field and its code."""
    fields: dict[str, list[ErrorDetail]] = {}
    for error in errors:
        field = error["attr"] or api_settings.NON_FIELD_ERRORS_KEY
        fields.setdefault(field, []).append(ErrorDetail(error["detail"], code=error["code"]))
    return fields


def _result(result: usage.UsageResult) -> dict[str, Any]:
    return {
        "transaction_id": result.transaction_id,
        "status": result.status,
        "errors": result.errors,
    }
