import uuid

import pytest

from tests.helpers.signing import LAGO_HMAC_KEY, STRIPE_SECRET, dumps, lago_hmac, stripe_signature


@pytest.fixture(autouse=True)
def _forget_lago_public_key():
    from billing.providers.lago.webhooks import reset_public_key_cache

    reset_public_key_cache()
    yield
    reset_public_key_cache()


@pytest.fixture(autouse=True)
def webhook_secrets(settings):
    settings.STRIPE_WEBHOOK_SECRET = ["whsec_old_" + "o" * 24, STRIPE_SECRET]
    settings.LAGO_WEBHOOK_HMAC_KEY = LAGO_HMAC_KEY


@pytest.fixture
def post_stripe(anonymous_client):
    def post(payload: dict, signature: str | None = None, body: bytes | None = None):
        body = dumps(payload) if body is None else body
        headers = (
            {}
            if signature == ""
            else {"HTTP_STRIPE_SIGNATURE": signature or stripe_signature(body)}
        )
        return anonymous_client.post(
            "/webhooks/stripe/", data=body, content_type="application/json", **headers
        )

    return post


@pytest.fixture
def post_lago(anonymous_client):
    def post(
        payload: dict,
        *,
        unique_key: str | None = None,
        algorithm: str = "hmac",
        signature: str | None = None,
        body: bytes | None = None,
    ):
        body = dumps(payload) if body is None else body
        return anonymous_client.post(
            "/webhooks/lago/",
            data=body,
            content_type="application/json",
            HTTP_X_LAGO_SIGNATURE=lago_hmac(body) if signature is None else signature,
            HTTP_X_LAGO_SIGNATURE_ALGORITHM=algorithm,
            HTTP_X_LAGO_UNIQUE_KEY=unique_key or str(uuid.uuid4()),
        )

    return post
