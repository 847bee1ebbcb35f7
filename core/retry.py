import random


def backoff_seconds(
    attempt: int, *, base: float, maximum: float, retry_after: float | None = None
) -> float:
    """Exponential backoff with jitter for the `attempt`-th failure (1-based).

    The jitter spreads the retries of many rows that failed in the same outage; a
    provider's `Retry-After` is a floor, never shortened.
    """
    ceiling = min(maximum, base * 2 ** (attempt - 1))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret
    return max(delay, retry_after or 0)
