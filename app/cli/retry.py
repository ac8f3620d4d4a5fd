"""Retrying what a busy service answers "not now" to, a bounded number of times for a bounded time.

Retried: OVERLOADED, DEADLINE_EXCEEDED, DATABASE_UNAVAILABLE and AUDIT_UNAVAILABLE (each says that
nothing was done), RATE_LIMITED, and in remote mode a service that could not be reached. The wait
doubles from first_delay_s up to max_delay_s, or is the service's Retry-After when it sends one.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from app.cli.common import UNAVAILABLE_ERRORS
from app.cli.remote import RemoteError
from app.errors import FacerecError, RateLimitedError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries in all, the first included
    budget_s: float = 60.0  # no retry starts later than this after the first try
    first_delay_s: float = 0.25
    max_delay_s: float = 8.0


def retry_after(error: Exception) -> float | None:
    """How long the error says to wait, when it is worth retrying at all; None when it is not."""
    if isinstance(error, RemoteError):
        return (error.retry_after_s or 0.0) if error.transient else None
    if isinstance(error, RateLimitedError):
        return float(error.wait_s)
    if isinstance(error, UNAVAILABLE_ERRORS):
        return 0.0
    return None


class RetryListener(Protocol):
    def __call__(self, error: Exception, *, wait_s: float) -> None: ...


@dataclass
class Attempts:
    """How many tries a call took (1 when it succeeded or failed at once)."""

    count: int = 0


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    attempts: Attempts | None = None,
    on_retry: RetryListener | None = None,
) -> T:
    """call(), again after a transient error while attempts and time last; the last error otherwise."""
    tried = attempts or Attempts()
    started = time.monotonic()
    delay = policy.first_delay_s
    while True:
        tried.count += 1
        try:
            return await call()
        except (FacerecError, RemoteError) as error:
            asked = retry_after(error)
            if asked is None or tried.count >= policy.attempts:
                raise
            # Jitter spreads concurrent retries out; the service's Retry-After is a floor.
            wait = max(asked, delay * random.uniform(0.5, 1.0))  # noqa: S311 - not for security
            if time.monotonic() - started + wait > policy.budget_s:
                raise
            if on_retry is not None:
                on_retry(error, wait_s=wait)
            await asyncio.sleep(wait)
            delay = min(delay * 2, policy.max_delay_s)
