"""Per-key, per-scope token buckets, in process memory.

Each replica keeps its own buckets, so with N replicas behind a load balancer a key may make up
to N times its limit; the README says so. No state here is needed by another replica.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from app.errors import RateLimitedError


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, *, per_minute: dict[str, int], clock: Callable[[], float] = time.monotonic) -> None:
        """per_minute: the limit of each scope; 0 means unlimited."""
        self._per_minute = per_minute
        self._clock = clock
        self._buckets: dict[tuple[Hashable, str], _Bucket] = {}

    def check(self, *, key: Hashable, scope: str) -> None:
        """Take one token from the (key, scope) bucket, or raise RateLimitedError with the wait."""
        limit = self._per_minute.get(scope, 0)
        if limit <= 0:
            return
        rate = limit / 60.0
        now = self._clock()
        bucket = self._buckets.setdefault((key, scope), _Bucket(tokens=float(limit), updated=now))
        bucket.tokens = min(float(limit), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        retry_after = max(1, math.ceil((1.0 - bucket.tokens) / rate))
        raise RateLimitedError(
            f"Rate limit of {limit} {scope} requests per minute reached for this key.",
            details={"scope": scope, "limit_per_minute": limit},
            retry_after_s=retry_after,
        )
