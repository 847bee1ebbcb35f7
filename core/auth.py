"""API key authentication: `Authorization: Bearer <key>`, one key per calling service.

A key, once read, is kept in the process for API_KEY_CACHE_SECONDS: a query per request
was a fifth of a usage event's time. A change to a key made in this process (a save, the
admin's revoke) forgets it at once; other processes see it within that many seconds.
"""

import threading
import time
from datetime import timedelta

import pghistory
from django.conf import settings
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
        api_key = _lookup(hash_api_key(raw_key.strip()))
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        if not api_key.is_active:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        _touch(api_key)
        # Audit rows written during this request name the calling service.
        pghistory.context(api_key=api_key.name, api_key_id=str(api_key.pk))
        return (None, api_key)

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (not 403) when the key is missing or wrong.
        return self.keyword


# key_hash -> (monotonic expiry, key). Unknown hashes are not kept: a caller guessing keys
# must not fill memory, and a key made a moment ago must work at once.
_keys: dict[str, tuple[float, ApiKey]] = {}
_keys_lock = threading.Lock()
MAX_CACHED_KEYS = 1000


def _lookup(key_hash: str) -> ApiKey | None:
    ttl = settings.API_KEY_CACHE_SECONDS
    now = time.monotonic()
    cached = _keys.get(key_hash)
    if cached is not None and cached[0] > now:
        return cached[1]
    api_key = ApiKey.objects.filter(key_hash=key_hash).first()
    if api_key is not None and ttl > 0:
        with _keys_lock:
            if len(_keys) >= MAX_CACHED_KEYS:
                _keys.clear()
            _keys[key_hash] = (now + ttl, api_key)
    return api_key


def forget_api_keys() -> None:
    """Drop this process's cached keys (after a key changed here)."""
    with _keys_lock:
        _keys.clear()


def _touch(api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    # Another process may have touched it (cache.add below is False): the cached copy then
    # still has the old time, and without this every request would ask Redis again.
    checked = getattr(api_key, "_touch_checked_at", None)
    if checked is not None and now - checked < LAST_USED_RESOLUTION:
        return
    api_key._touch_checked_at = now  # type: ignore[attr-defined]
    if cache.add(f"apikey-touch:{api_key.pk}", 1, timeout=60) is False:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now  # the cached copy, so the next requests skip this


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
