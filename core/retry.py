import random


def backoff_bounds(attempt: int, *, base: float, maximum: float) -> tuple[float, float]:
    """The shortest and longest delay after the `attempt`-th failure (1-based)."""
    ceiling = min(maximum, base * 2 ** (attempt - 1))
    return ceiling / 2, ceiling


def backoff_seconds(
    attempt: int, *, base: float, maximum: float, retry_after: float | None = None
) -> float:
    """Exponential backoff with jitter for the `attempt`-th failure (1-based).

    The jitter spreads the retries of many rows that failed in the same outage; a
    provider's `Retry-After` is a floor, never shortened.
    """
    low, high = backoff_bounds(attempt, base=base, maximum=maximum)
    delay = random.uniform(low, high)  # noqa: S311 - jitter, not a secret
    return max(delay, retry_after or 0)
