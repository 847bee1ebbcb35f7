"""The base of every API view: unsafe methods run in one transaction, with idempotency."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import models, transaction
from django.http import Http404, HttpResponse
from rest_framework import exceptions, status, viewsets
from rest_framework.response import Response
from rest_framework.views import APIView

from core.idempotency import (
    UNSAVED_STATUSES,
    Replay,
    idempotency_claim,
    idempotency_complete,
    idempotency_lock,
    idempotency_release,
    request_fingerprint,
)
from core.models import IdempotencyKey
from core.renderers import render_json

IDEMPOTENCY_HEADER = "Idempotency-Key"

# The mixins below are only ever mixed into DRF views: to the type checker they are
# DRF views already, so what they call on `self` is known (DRF ships no types: Any).
if TYPE_CHECKING:
    from rest_framework.generics import GenericAPIView as _GenericAPIViewBase
    from rest_framework.views import APIView as _APIViewBase
else:
    _APIViewBase = _GenericAPIViewBase = object


class TransactionalIdempotentMixin(_APIViewBase):
    """Runs writes atomically and honours `Idempotency-Key` on POST.

    DRF's `dispatch` is reshaped, not extended, because the claim needs the authenticated
    key (known only after `initial`) and the saved response must commit together with the
    work it describes.
    """

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        self.args = args
        self.kwargs = kwargs
        request = self.initialize_request(request, *args, **kwargs)
        self.request = request
        self.headers = self.default_response_headers
        try:
            self.initial(request, *args, **kwargs)
            if request.method in ("GET", "HEAD", "OPTIONS"):
                response = self._handle(request, *args, **kwargs)
            else:
                response = self._handle_write(request, *args, **kwargs)
        except Exception as exc:
            response = self.handle_exception(exc)
        self.response = self.finalize_response(request, response, *args, **kwargs)
        return self.response

    def _handle(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        not_allowed: Callable[..., Any] = self.http_method_not_allowed
        if request.method.lower() in self.http_method_names:
            handler = getattr(self, request.method.lower(), not_allowed)
        else:
            handler = not_allowed
        return handler(request, *args, **kwargs)

    def _handle_write(self, request: Any, *args: Any, **kwargs: Any) -> Any:
        claim: IdempotencyKey | None = None
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if request.method == "POST" and key is not None:
            claimed = idempotency_claim(
                api_key=request.auth,
                key=key,
                fingerprint=request_fingerprint(
                    method=request.method, path=request.path, body=request.body
                ),
            )
            if isinstance(claimed, Replay):
                return _replayed(claimed)
            claim = claimed
        try:
            with transaction.atomic():
                if claim is not None:
                    idempotency_lock(claim=claim)
                try:
                    response = self._handle(request, *args, **kwargs)
                except Exception as exc:
                    response = self.handle_exception(exc)
                if response.status_code >= 400:
                    # A refused request leaves nothing behind, whatever it had started.
                    transaction.set_rollback(True)
                elif claim is not None:
                    stored = idempotency_complete(
                        claim=claim, status=response.status_code, body=_render(response)
                    )
                    if not stored:  # impossible while we hold the claim's lock
                        raise RuntimeError("idempotency claim lost during the request")
        except BaseException:
            if claim is not None:
                idempotency_release(claim=claim)
            raise
        if claim is not None and response.status_code >= 400:
            if response.status_code >= 500 or response.status_code in UNSAVED_STATUSES:
                idempotency_release(claim=claim)
            else:
                idempotency_complete(
                    claim=claim, status=response.status_code, body=_render(response)
                )
        return response


def _render(response: HttpResponse) -> str:
    data = getattr(response, "data", None)
    # The renderer the answer itself was rendered with, so a replay is byte for byte it.
    return "" if data is None else render_json(data).decode()


def _replayed(replay: Replay) -> HttpResponse:
    response = HttpResponse(replay.body, status=replay.status, content_type="application/json")
    response["Idempotent-Replayed"] = "true"
    return response


class ApiView(TransactionalIdempotentMixin, APIView):
    pass


class ApiViewSet(TransactionalIdempotentMixin, viewsets.GenericViewSet):
    def get_object(self) -> Any:
        try:
            return super().get_object()
        except Http404:
            lookup = self.lookup_url_kwarg or self.lookup_field
            field = "id" if self.lookup_field == "pk" else self.lookup_field
            raise not_found(self.get_queryset().model, field, self.kwargs[lookup]) from None


def not_found(
    model: type[models.Model], field: str, value: object, *, of: str = ""
) -> exceptions.NotFound:
    """A 404 that names what was looked for: `No customer with external_id 'acme'.`"""
    shown = str(value)
    if len(shown) > 100:
        shown = f"{shown[:100]}…"
    owner = f" of {of}" if of else ""
    return exceptions.NotFound(f"No {model._meta.verbose_name} with {field} '{shown}'{owner}.")


class ServiceWriteMixin(_GenericAPIViewBase):
    """create / partial_update that validate with the serializer, then hand the validated
    data to a service (views stay thin: the rules live in the services).

    `create_service(**data)` and `update_service(<update_kwarg>=obj, **data)` are set as
    staticmethods on the viewset.
    """

    update_kwarg = "instance"

    def create(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        body = self.get_serializer(data=request.data)
        body.is_valid(raise_exception=True)
        created = self.create_service(**body.validated_data)
        # The validated serializer renders the answer: its fields are built already
        # (building a ModelSerializer's fields again was a sixth of a create's time), and
        # the fields of one made for an instance differ only in what is read-only.
        body.instance = created
        return Response(body.data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        current = self.get_object()
        body = self.get_serializer(current, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        updated = self.update_service(**{self.update_kwarg: current}, **body.validated_data)
        # Read back through the view's queryset, so related rows are shown as stored.
        return Response(self.get_serializer(self.get_queryset().get(pk=updated.pk)).data)
