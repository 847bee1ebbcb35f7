"""What an API caller reads of a refusal raised below the API (core/errors.py): the
domain's code and a sentence for them, never the names our code or an SDK uses inside."""

from core.errors import api_error
from core.exceptions import ProviderError, ProviderUnavailable
from core.locks import LockTimeout


def test_a_provider_refusal_names_the_provider_and_its_code_not_the_sdk():
    refusal = ProviderError(
        "stripe",
        "InvalidRequestError code=parameter_missing param=customer http=400",
        code="parameter_missing",
        http_status=400,
    )

    error = api_error(refusal)

    assert error.status_code == 422
    assert error.detail == "Stripe refused the request (its code: parameter_missing)."
    assert error.detail.code == "parameter_missing"
    # Staff and logs keep the whole story.
    assert "param=customer" in str(refusal)


def test_a_card_refusal_shows_the_sentence_written_for_the_card_holder():
    declined = ProviderError(
        "stripe",
        "Your card was declined.",
        code="card_declined",
        http_status=402,
        user_message="Your card was declined.",
    )

    error = api_error(declined)

    assert (error.status_code, error.detail, error.detail.code) == (
        402,
        "Your card was declined.",
        "card_declined",
    )


def test_a_lago_refusal_does_not_show_our_request_path():
    refusal = ProviderError(
        "lago", "POST /invoices/abc/finalize -> 422 invalid_status", code="invalid_status"
    )

    assert api_error(refusal).detail == "Lago refused the request (its code: invalid_status)."


def test_an_outage_and_a_busy_object_are_503_without_internal_names():
    outage = api_error(ProviderUnavailable("stripe", "APIConnectionError", code="network"))
    busy = LockTimeout("customer:1f0c:cards", 15)

    assert (outage.status_code, outage.detail.code) == (503, "provider_unavailable")
    assert outage.detail == "Stripe is unavailable; try again later."
    assert (api_error(busy).status_code, api_error(busy).detail) == (
        503,
        "The object is busy; try again shortly.",
    )
    assert "customer:1f0c:cards" in str(busy)  # for the logs
