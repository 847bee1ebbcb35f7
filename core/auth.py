"""API key authentication: `Authorization: Bearer <key>`, one key per calling service."""

from datetime import timedelta

import pghistory
from django.core.cache import cache
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from core.models import ApiKey, hash_api_key

# Writing last_used_at on every request would make each read a write; minute precision is
# what an operator needs to tell a live key from a dead one.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw_key = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not raw_key.strip():
            raise exceptions.AuthenticationFailed("Use `Authorization: Bearer <api key>`.")
        try:
            api_key = ApiKey.objects.get(key_hash=hash_api_key(raw_key.strip()))
        except ApiKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Unknown API key.") from None
        if not api_key.is_active:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        _touch(api_key)
        # Audit rows written during this request name the calling service.
        pghistory.context(api_key=api_key.name, api_key_id=str(api_key.pk))
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when the key is missing or wrong.
        return self.keyword


def _touch(api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    if cache.add(f"apikey-touch:{api_key.pk}", 1, timeout=60) is False:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)


class HasApiKey(permissions.BasePermission):
    """Any valid key may read; only a key without the read-only flag may write."""

    message = "This API key is read-only."

    def has_permission(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            raise exceptions.NotAuthenticated("An API key is required.")
        if request.method in permissions.SAFE_METHODS:
            return True
        return not request.auth.read_only


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """Tells drf-spectacular how API keys are sent, so the docs offer an Authorize box."""

    target_class = "core.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <api key>`: one key per calling service, "
            "made by an operator (`manage.py create_api_key NAME [--read-only]`). A missing, "
            "unknown or revoked key answers 401; a read-only key may read, and a write with "
            "it answers 403.",
        }
