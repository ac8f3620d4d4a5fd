"""Per-key, per-scope rate limits, shared by every replica: the buckets are rows in Postgres.

N replicas behind a load balancer admit, together, what one would: each request takes from the
same row. How the take works, and why it is exact under concurrency and costs one statement, is
in app.db.repository.ratelimits. A take runs in the caller's unit of work (the key check's, so
that one transaction per request covers both) or, through `check`, in a unit of work of its own.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime

from app.db.repository import Repository
from app.db.session import Database
from app.errors import RateLimitedError


class RateLimiter:
    def __init__(self, *, database: Database, per_minute: dict[str, int]) -> None:
        """per_minute: the limit of each scope; 0 means unlimited."""
        self._database = database
        self._per_minute = per_minute

    def limit_of(self, scope: str) -> int:
        return self._per_minute.get(scope, 0)

    async def take(
        self, repository: Repository, *, key_id: uuid.UUID, scope: str, at: datetime | None = None
    ) -> RateLimitedError | None:
        """Take one request from the key's budget in this scope, in the caller's unit of work.

        Returns the error to raise once that unit of work is over, or None when admitted; `at`
        replaces the database's clock (tests).
        """
        limit = self.limit_of(scope)
        if limit <= 0:
            return None
        decision = await repository.take_rate_limit_token(key_id=key_id, scope=scope, per_minute=limit, at=at)
        if decision.admitted:
            return None
        return RateLimitedError(
            f"Rate limit of {limit} {scope} requests per minute reached for this key.",
            details={"scope": scope, "limit_per_minute": limit},
            retry_after_s=max(1, math.ceil(decision.wait_s)),
        )

    async def check(self, *, key_id: uuid.UUID, scope: str, at: datetime | None = None) -> None:
        """Take one request in a unit of work of its own; RateLimitedError, with the wait, when over the limit."""
        async with self._database.transaction() as repository:
            refused = await self.take(repository, key_id=key_id, scope=scope, at=at)
        if refused is not None:
            raise refused

    async def forget_idle(self) -> int:
        """Delete the buckets that are full again, which hold nothing; how many there were."""
        async with self._database.transaction() as repository:
            return await repository.delete_idle_rate_limit_buckets()
