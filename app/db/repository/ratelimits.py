"""Rate limits shared by every replica: GCRA, one UPSERT per request.

GCRA (the generic cell rate algorithm) admits exactly what a token bucket of `limit` tokens
refilled at `limit` per minute admits, but keeps one timestamp per (key, scope) where a bucket
keeps a count and the time it was last refilled: the theoretical arrival time (TAT), when the
bucket will be full again. With interval = 60 s / limit and tolerance = (limit - 1) x interval,
a request at `now` is admitted when max(TAT, now) - now <= tolerance, and then moves TAT to
max(TAT, now) + interval; a refused one changes nothing and is told to wait TAT - now - tolerance.

Chosen over a fixed-window counter, which is as cheap but admits up to twice the limit across
the edge of a window, and over a token-bucket row (tokens, updated_at), which decides the same
but refills a float in SQL, where GCRA compares timestamps in whole microseconds.

Exact under concurrency: the take is a single INSERT ... ON CONFLICT DO UPDATE ... RETURNING.
Its row lock makes concurrent takes of one (key, scope), from any replica, run one after the
other, each on the row the previous one committed (READ COMMITTED re-reads a row it waited for).
Its clock is the database's (now(), the start of the transaction: one clock for every replica),
or `at` where a test sets the time. Rows are at most keys x scopes; once a row's TAT has passed
it holds nothing (no row means a full bucket), and the periodic job deletes it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from app.db.records import RateDecision
from app.db.repository.base import Statements

_TAKE = """
INSERT INTO rate_limit_buckets AS b (key_id, scope, tat, admitted)
VALUES (%(key_id)s, %(scope)s, {now} + %(interval)s, true)
ON CONFLICT (key_id, scope) DO UPDATE SET
    tat = CASE WHEN greatest(b.tat, {now}) - {now} <= %(tolerance)s
               THEN greatest(b.tat, {now}) + %(interval)s ELSE b.tat END,
    admitted = greatest(b.tat, {now}) - {now} <= %(tolerance)s
RETURNING admitted, extract(epoch FROM tat - {now} - %(tolerance)s)
"""
TAKE_AT_NOW = _TAKE.format(now="now()")
TAKE_AT = _TAKE.format(now="%(at)s::timestamptz")


class RateLimitStatements(Statements):
    async def take_rate_limit_token(
        self, *, key_id: uuid.UUID, scope: str, per_minute: int, at: datetime | None = None
    ) -> RateDecision:
        """Admit one request of the key in this scope, or say how long until one would be (per_minute >= 1)."""
        interval = timedelta(microseconds=round(60_000_000 / per_minute))
        params = {"key_id": key_id, "scope": scope, "interval": interval, "tolerance": interval * (per_minute - 1)}
        if at is None:
            row = await self._row(TAKE_AT_NOW, params=params, prepare=True)
        else:
            row = await self._row(TAKE_AT, params={**params, "at": at})
        assert row is not None  # an UPSERT always returns its row
        admitted, wait_s = row
        return RateDecision(admitted=bool(admitted), wait_s=0.0 if admitted else float(wait_s))

    async def delete_idle_rate_limit_buckets(self) -> int:
        """Forget the buckets that are full again (as good as no row); how many were deleted."""
        return await self._count("DELETE FROM rate_limit_buckets WHERE tat <= now()")
