"""Sign webhook bodies the way Stripe and Lago do."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt

STRIPE_SECRET = "whsec_test_" + "s" * 24
LAGO_HMAC_KEY = "lago-hmac-key-for-tests"


def stripe_signature(body: bytes, secret: str = STRIPE_SECRET, at: int | None = None) -> str:
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def stripe_event(
    event_type: str, obj: dict, *, created: int | None = None, event_id: str | None = None
) -> dict:
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": event_type,
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "api_version": "2026-08-26.dahlia",
        "data": {"object": obj},
    }


def lago_hmac(body: bytes, key: str = LAGO_HMAC_KEY) -> str:
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def lago_jwt(body: bytes, private_key_pem: str, issuer: str = "http://lago.test") -> str:
    return jwt.encode({"data": body.decode(), "iss": issuer}, private_key_pem, algorithm="RS256")


def dumps(payload: dict) -> bytes:
    return json.dumps(payload).encode()
