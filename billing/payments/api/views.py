"""The invoice endpoints. They live in payments, the layer that sees both an invoice and
its payment attempts; what they call is invoicing's (generate, finalize, void, PDF) and
payments' own (pay)."""

from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from billing.invoicing import engines, selectors
from billing.invoicing.api.serializers import GenerateInvoiceSerializer
from billing.invoicing.models import Invoice
from billing.invoicing.pdf import invoice_pdf
from billing.payments import collection
from billing.payments.api.serializers import InvoiceListSerializer, InvoiceSerializer
from core.views import ApiViewSet, not_found
from subscriptions.models import Subscription


class PdfRenderer(BaseRenderer):
    """Lets a client ask for `Accept: application/pdf`; errors still render as JSON."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


class InvoiceFilter(filters.FilterSet):
    customer = filters.CharFilter(method="noop", help_text="The customer's external_id.")
    subscription = filters.CharFilter(method="noop", help_text="The subscription's external_id.")
    status = filters.ChoiceFilter(method="noop", choices=Invoice.Status.choices)
    payment_status = filters.ChoiceFilter(method="noop", choices=Invoice.PaymentStatus.choices)
    currency = filters.CharFilter(method="noop")
    issued_after = filters.IsoDateTimeFilter(method="noop")
    issued_before = filters.IsoDateTimeFilter(method="noop")

    class Meta:
        model = Invoice
        fields: list[str] = []

    def noop(self, queryset, name, value):
        return queryset

    def filter_queryset(self, queryset):
        return selectors.invoice_list(**{k: v for k, v in self.form.cleaned_data.items() if v})


@extend_schema_view(
    list=extend_schema(operation_id="ListInvoices"),
    retrieve=extend_schema(operation_id="GetInvoice"),
)
class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Invoice.objects.select_related("customer", "subscription").prefetch_related(
        "lines__metric", "attempts"
    )
    filterset_class = InvoiceFilter
    serializer_class = InvoiceSerializer

    def get_serializer_class(self):
        return InvoiceListSerializer if self.action == "list" else InvoiceSerializer

    def _respond(self, invoice: Invoice, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=invoice.pk)
        return Response(InvoiceSerializer(fresh).data, status=code)

    @extend_schema(
        operation_id="GenerateInvoice",
        request=GenerateInvoiceSerializer,
        responses={201: InvoiceSerializer, 200: InvoiceSerializer},
    )
    @action(detail=False, methods=["post"], filterset_class=None)
    def generate(self, request):
        body = GenerateInvoiceSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        external_id = body.validated_data["subscription"]
        subscription = Subscription.objects.filter(external_id=external_id).first()
        if subscription is None:
            raise not_found(Subscription, "external_id", external_id)
        invoice, created = engines.engine().invoice_generate(
            subscription=subscription,
            start=body.validated_data.get("period_start"),
            end=body.validated_data.get("period_end"),
        )
        return self._respond(invoice, status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(operation_id="FinalizeInvoice", request=None, responses=InvoiceSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def finalize(self, request, pk=None):
        return self._respond(engines.invoice_finalize(invoice=self.get_object()))

    @extend_schema(operation_id="VoidInvoice", request=None, responses=InvoiceSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def void(self, request, pk=None):
        return self._respond(engines.invoice_void(invoice=self.get_object()))

    @extend_schema(operation_id="PayInvoice", request=None, responses=InvoiceSerializer)
    @action(detail=True, methods=["post"], filterset_class=None)
    def pay(self, request, pk=None):
        return self._respond(collection.invoice_pay(invoice=self.get_object()))

    @extend_schema(
        operation_id="DownloadInvoicePdf",
        responses={(200, "application/pdf"): OpenApiResponse(OpenApiTypes.BINARY)},
    )
    @action(
        detail=True,
        methods=["get"],
        filterset_class=None,
        renderer_classes=[JSONRenderer, PdfRenderer],
    )
    def pdf(self, request, pk=None):
        invoice = self.get_object()
        response = HttpResponse(invoice_pdf(invoice=invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice}.pdf"'
        return response
