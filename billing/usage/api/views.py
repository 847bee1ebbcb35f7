from typing import Any

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
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
from core.views import ApiViewSet


class UsagePagination(CursorPagination):
    ordering = ("-timestamp", "-id")


class UsageFilter(filters.FilterSet):
    # A subscription is required: no read scans every subscription's usage.
    subscription = filters.CharFilter(field_name="subscription__external_id", required=True)
    metric = filters.CharFilter(field_name="metric__code")
    to = filters.IsoDateTimeFilter(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = UsageRecord
        fields: list[str] = []


# `from` is a Python keyword; the timestamp bounds also select the partitions read.
UsageFilter.base_filters["from"] = filters.IsoDateTimeFilter(
    field_name="timestamp", lookup_expr="gte"
)


class UsageViewSet(mixins.ListModelMixin, ApiViewSet):
    """Usage events: recorded once by transaction_id, read back per subscription."""

    serializer_class = UsageRecordSerializer
    queryset = UsageRecord.objects.select_related("subscription", "metric")
    filterset_class = UsageFilter
    pagination_class = UsagePagination

    @extend_schema(operation_id="ListUsage")
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)

    @extend_schema(
        operation_id="RecordUsage",
        request=UsageEventSerializer,
        responses={201: UsageRecordSerializer, 200: UsageRecordSerializer},
    )
    def create(self, request, *args, **kwargs):
        event, errors = usage.parse_event(request.data)
        if event is None:  # (None, errors) or (event, [])
            raise ValidationError(_field_errors(errors))
        (result,) = usage.usage_record_batch(events=[event], with_records=True)
        if result.status == "created":
            return Response(
                UsageRecordSerializer(result.record).data, status=status.HTTP_201_CREATED
            )
        if result.status == "duplicate":
            stored = self.get_queryset().filter(transaction_id=result.transaction_id).first()
            return Response(UsageRecordSerializer(stored).data, status=status.HTTP_200_OK)
        error = result.errors[0]
        if result.status == "conflict" or error["code"] == usage.PERIOD_CLOSED:
            raise Conflict(error["detail"], code=error["code"], attr=error["attr"])
        raise UnprocessableEntity(error["detail"], code=error["code"], attr=error["attr"])

    @extend_schema(
        operation_id="RecordUsageBatch",
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
