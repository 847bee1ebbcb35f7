from django.conf import settings


def provider_enabled(provider: str) -> bool:
    """A provider with no credentials is disabled: nothing is queued for it."""
    if provider == "stripe":
        return bool(settings.STRIPE_SECRET_KEY)
    if provider == "lago":
        return bool(settings.LAGO_API_URL and settings.LAGO_API_KEY)
    raise ValueError(f"unknown provider {provider!r}")
