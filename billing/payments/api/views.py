"""The invoice endpoints. They live in payments, the layer that sees both an invoice and
its payment attempts; what they call is invoicing's (generate, finalize, void, PDF) and
payments' own (pay)."""

from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from billing.invoicing import engines, one_off, selectors
from billing.invoicing.api.add_ons import OneOffInvoiceInput
from billing.invoicing.api.serializers import (
    GenerateInvoiceSerializer,
    InvoicePreviewSerializer,
    PreviewInvoiceSerializer,
)
from billing.invoicing.models import Invoice
from billing.invoicing.pdf import invoice_pdf
from billing.invoicing.preview import invoice_preview
from billing.payments import collection
from billing.payments.api.serializers import InvoiceListSerializer, InvoiceSerializer
from core.renderers import JSONRenderer
from core.schema import codes
from core.views import ApiViewSet, not_found
from customers.models import Customer
from subscriptions.models import Subscription


class PdfRenderer(BaseRenderer):
    """Lets a client ask for `Accept: application/pdf` (the PDF itself is an HttpResponse;
    errors are answered as JSON by InvoiceViewSet.finalize_response)."""

    media_type = "application/pdf"
    format = "pdf"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


# With BILLING_ENGINE=lago, Lago issues the invoices: these calls wait for its answer.
LAGO_REFUSED = {
    "(Lago's code)": "With Lago as the billing engine: Lago refused, with its own code.",
}
LAGO_UNAVAILABLE = {
    "provider_unavailable": "With Lago as the billing engine: Lago did not answer in time "
    "or failed.",
}
INVALID_TRANSITION = "The invoice's status does not allow it; `detail` names it."


class InvoiceFilter(filters.FilterSet):
    customer = filters.CharFilter(method="noop", help_text="The customer's external_id.")
    subscription = filters.CharFilter(method="noop", help_text="The subscription's external_id.")
    status = filters.ChoiceFilter(method="noop", choices=Invoice.Status.choices)
    payment_status = filters.ChoiceFilter(method="noop", choices=Invoice.PaymentStatus.choices)
    currency = filters.CharFilter(method="noop", help_text="ISO 4217, e.g. `USD`.")
    issued_after = filters.IsoDateTimeFilter(method="noop", help_text="Issued at or after.")
    issued_before = filters.IsoDateTimeFilter(method="noop", help_text="Issued before.")

    class Meta:
        model = Invoice
        fields: list[str] = []

    def noop(self, queryset, name, value):
        return queryset

    def filter_queryset(self, queryset):
        return selectors.invoice_list(**{k: v for k, v in self.form.cleaned_data.items() if v})


@extend_schema(tags=["Invoices"])
@extend_schema_view(
    list=extend_schema(
        operation_id="ListInvoices",
        summary="List invoices",
        description="Invoices without their lines, newest first, cursor paginated; filter "
        "by customer, subscription, status, payment status, currency and issue date.",
    ),
    retrieve=extend_schema(
        operation_id="GetInvoice",
        summary="Get an invoice",
        description="The invoice with its lines (a fee per charge: units, unit amount, "
        "amount), its totals and its payment attempts.",
    ),
)
class InvoiceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ApiViewSet):
    queryset = Invoice.objects.select_related("customer", "subscription").prefetch_related(
        "lines__metric", "attempts"
    )
    filterset_class = InvoiceFilter
    serializer_class = InvoiceSerializer

    def get_serializer_class(self):
        return InvoiceListSerializer if self.action == "list" else InvoiceSerializer

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code >= 400 and isinstance(
            getattr(request, "accepted_renderer", None), PdfRenderer
        ):
            # An error of the PDF route is JSON, and its Content-Type says so.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    def _respond(self, invoice: Invoice, code: int = status.HTTP_200_OK) -> Response:
        fresh = self.get_queryset().get(pk=invoice.pk)
        return Response(InvoiceSerializer(fresh).data, status=code)

    @extend_schema(
        operation_id="CreateOneOffInvoice",
        summary="Create a one-off invoice",
        description="Bills add-ons outside any subscription (a setup fee, support hours): "
        "each fee is `units` (default 1) times the add-on's amount, or `unit_amount_cents` "
        "given here, rounded half-up once; tax at the customer's rate. The invoice is "
        "issued at once (`invoice_type: one_off`) and collected like the others.",
        request=OneOffInvoiceInput,
        responses={
            201: InvoiceSerializer,
            404: codes(not_found="No customer or add-on with that id or code."),
            422: codes(
                currency_mismatch="Not the customer's currency, or an add-on priced in "
                "another currency without `unit_amount_cents`.",
                amount_too_large="A line beyond what one line may bill.",
            ),
        },
    )
    def create(self, request):
        body = OneOffInvoiceInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        customer = Customer.objects.filter(external_id=data["customer"]).first()
        if customer is None:
            raise not_found(Customer, "external_id", data["customer"])
        invoice = one_off.one_off_invoice_create(
            customer=customer, currency=data["currency"], fees=body.one_off_fees
        )
        return self._respond(invoice, status.HTTP_201_CREATED)

    @extend_schema(
        operation_id="GenerateInvoice",
        summary="Generate a subscription period's invoice",
        description="Makes the draft invoice of one closed billing period of the "
        "subscription (default: its last closed period), rated from the period's fixed "
        "fee and usage: 201. A period has one invoice: asking again answers 200 with the "
        "same invoice. Periods are half-open, `[period_start, period_end)`; a "
        "`period_end` written as Lago writes it (`…T23:59:59Z`) means the same period. "
        "The billing run does this by itself for every ended period; this is for asking "
        "sooner. With Lago as the billing engine, Lago's invoice (or, before Lago has "
        "issued one, a preview of the current period) is returned, and Lago is called "
        "while you wait.",
        request=GenerateInvoiceSerializer,
        responses={
            201: OpenApiResponse(InvoiceSerializer, description="Generated."),
            200: OpenApiResponse(
                InvoiceSerializer, description="That period's invoice already existed."
            ),
            404: codes(not_found="No subscription with this `external_id`."),
            422: codes(
                no_closed_period="The subscription has no closed period yet.",
                period_not_closed="The period given is not a closed billing period of the "
                "subscription; `detail` lists the latest ones.",
                period_not_invoiced="With Lago as the billing engine: Lago has issued no "
                "invoice for that period, and previews only the current one.",
                preview_unavailable="With Lago as the billing engine: Lago's preview names "
                "no billing period.",
                **LAGO_REFUSED,
            ),
            503: codes(**LAGO_UNAVAILABLE),
        },
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

    @extend_schema(
        operation_id="PreviewInvoice",
        summary="Preview the current period's invoice",
        description="The invoice the subscription's current period would get if it ended "
        "now, with the usage recorded so far: its fixed fee (prorated by days as the real "
        "invoice will be), each charge per plan it was on, a pay-in-advance fee billed "
        "ahead at renewal (left out while a downgrade is scheduled), taxes and total. A "
        "read: the preview is not stored, no provider is called, and a read-only key may "
        "ask; like every read of a subscription, it first applies what the clock has made "
        "due (a start, a period that ended), as the beat job would. It "
        "is rated by the same code as the real invoice, so for the same usage the two "
        "agree to the cent. With Lago as the billing engine this is our rating of the "
        "period (the reconciliation check), not Lago's preview.",
        parameters=[PreviewInvoiceSerializer],
        responses={
            200: InvoicePreviewSerializer,
            404: codes(not_found="No subscription with this `external_id`."),
            422: codes(no_current_period="The subscription is not active: no period to preview."),
        },
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def preview(self, request):
        body = PreviewInvoiceSerializer(data=request.query_params)
        body.is_valid(raise_exception=True)
        external_id = body.validated_data["subscription"]
        subscription = Subscription.objects.filter(external_id=external_id).first()
        if subscription is None:
            raise not_found(Subscription, "external_id", external_id)
        return Response(InvoicePreviewSerializer(invoice_preview(subscription=subscription)).data)

    @extend_schema(
        operation_id="FinalizeInvoice",
        summary="Finalize an invoice",
        description="Issues a draft invoice: gives it the issuer's next number (sequential, "
        "without gaps), dates it and asks for payment: the customer's default card is "
        "charged in the background. A finalized invoice can no longer change. The billing "
        "run finalizes drafts by itself; this is for doing it sooner.",
        request=None,
        responses={
            200: InvoiceSerializer,
            409: codes(
                invalid_transition="The invoice is not a draft (or, with Lago as the "
                "billing engine, is a preview Lago has not issued).",
                finalization_pending="With Lago as the billing engine: Lago is still "
                "generating the invoice; retry shortly.",
            ),
            422: codes(**LAGO_REFUSED),
            503: codes(**LAGO_UNAVAILABLE),
        },
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def finalize(self, request, pk=None):
        return self._respond(engines.invoice_finalize(invoice=self.get_object()))

    @extend_schema(
        operation_id="VoidInvoice",
        summary="Void an invoice",
        description="Voids a draft or finalized invoice that is not paid: it is no longer "
        "owed, nor charged, and its period can be invoiced again. With Lago as the "
        "billing engine the invoice is voided in Lago first, while you wait; if Lago "
        "refuses or fails, nothing changes.",
        request=None,
        responses={
            200: InvoiceSerializer,
            409: codes(
                invalid_transition="The invoice is already voided.",
                invoice_paid="The invoice is paid.",
                invoice_credited="Credit notes were issued on it: void them first.",
                payment_in_progress="A payment of the invoice is in flight; retry once it "
                "has settled.",
            ),
            422: codes(**LAGO_REFUSED),
            503: codes(**LAGO_UNAVAILABLE),
        },
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def void(self, request, pk=None):
        return self._respond(engines.invoice_void(invoice=self.get_object()))

    @extend_schema(
        operation_id="PayInvoice",
        summary="Retry collecting an invoice",
        description="Asks for payment of a finalized, unpaid invoice now, also after the "
        "automatic retries gave up or the daily charge limit held it back: the "
        "customer's default card is charged in the background, and the invoice's "
        "`payment_status` and `payment_attempts` show the outcome.",
        request=None,
        responses={
            200: InvoiceSerializer,
            409: codes(
                invalid_transition="The invoice is not finalized (a draft or voided).",
                invoice_paid="The invoice is already paid.",
                payment_in_progress="A payment of the invoice is already in flight.",
                no_default_payment_method="The customer has no default card: set one "
                "with SetDefaultPaymentMethod first.",
                stripe_customer_pending="The customer is not in Stripe yet; retry in a "
                "few seconds.",
            ),
        },
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def pay(self, request, pk=None):
        return self._respond(collection.invoice_pay(invoice=self.get_object()))

    @extend_schema(
        operation_id="DownloadInvoicePdf",
        summary="Download an invoice as PDF",
        description="The invoice rendered as a PDF document (`Accept: application/pdf`, or "
        "`?format=pdf`). Errors still answer in JSON.",
        responses={
            (200, "application/pdf"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The PDF document."
            )
        },
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
