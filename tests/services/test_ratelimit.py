"""The shared rate limit's arithmetic (GCRA) on a real Postgres, on a clock the tests set: bursts,
refills, the wait it reports, concurrency, and forgetting idle buckets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from app.composition import make_database
from app.config import Settings
from app.errors import RateLimitedError
from app.services.access import SYSTEM, KeyService, Scope
from app.services.ratelimit import RateLimiter

T0 = datetime(2031, 1, 1, tzinfo=UTC)


@asynccontextmanager
async def _limiter(settings: Settings, *, per_minute: int) -> AsyncIterator[tuple[RateLimiter, uuid.UUID]]:
    """A limiter of `per_minute` identify requests over the test database, and a new key."""
    database = make_database(settings, url=settings.database_url or "", pool_size=8)
    try:
        await database.prepare(migrate=True)
        issued = await KeyService(database=database).create(
            name="limits", scopes=[Scope.IDENTIFY], collections=None, principal=SYSTEM
        )
        yield RateLimiter(database=database, per_minute={"identify": per_minute}), issued.record.id
    finally:
        await database.engine.dispose()


def _run(settings: Settings, *, per_minute: int, test: Callable[[RateLimiter, uuid.UUID], Awaitable[None]]) -> None:
    async def main() -> None:
        async with _limiter(settings, per_minute=per_minute) as (limiter, key_id):
            await test(limiter, key_id)

    asyncio.run(main())


def _bucket_count(settings: Settings, *, key_id: uuid.UUID) -> int:
    with psycopg.connect((settings.database_url or "").replace("+psycopg", "")) as connection:
        row = connection.execute("SELECT count(*) FROM rate_limit_buckets WHERE key_id = %s", (key_id,)).fetchone()
    return int(row[0]) if row else 0


async def _admitted(limiter: RateLimiter, *, key_id: uuid.UUID, at: datetime) -> bool:
    try:
        await limiter.check(key_id=key_id, scope="identify", at=at)
    except RateLimitedError:
        return False
    return True


async def _count_admitted(limiter: RateLimiter, *, key_id: uuid.UUID, at: datetime, tries: int) -> int:
    return sum([await _admitted(limiter, key_id=key_id, at=at) for _ in range(tries)])


def test_fresh_key_gets_the_whole_limit_at_once_then_one_request_per_interval(settings: Settings) -> None:
    async def test(limiter: RateLimiter, key_id: uuid.UUID) -> None:
        await limiter.check(key_id=key_id, scope="identify", at=T0)
        await limiter.check(key_id=key_id, scope="identify", at=T0)
        with pytest.raises(RateLimitedError) as refused:
            await limiter.check(key_id=key_id, scope="identify", at=T0)
        with pytest.raises(RateLimitedError) as still_refused:
            await limiter.check(key_id=key_id, scope="identify", at=T0 + timedelta(seconds=29.5))
        await limiter.check(key_id=key_id, scope="identify", at=T0 + timedelta(seconds=30))

        assert refused.value.wait_s == 30
        assert refused.value.headers == {"Retry-After": "30"}
        assert refused.value.details == {"scope": "identify", "limit_per_minute": 2, "retry_after_s": 30}
        assert still_refused.value.wait_s == 1  # 0.5 s, rounded up to whole seconds

    _run(settings, per_minute=2, test=test)


def test_refill_is_proportional_to_the_time_waited(settings: Settings) -> None:
    async def test(limiter: RateLimiter, key_id: uuid.UUID) -> None:
        burst = await _count_admitted(limiter, key_id=key_id, at=T0, tries=70)
        after_10_5_s = await _count_admitted(limiter, key_id=key_id, at=T0 + timedelta(seconds=10.5), tries=20)

        assert burst == 60
        assert after_10_5_s == 10  # one a second at 60 a minute; the half second left is not a request

    _run(settings, per_minute=60, test=test)


def test_a_long_idle_refills_to_the_limit_and_no_further(settings: Settings) -> None:
    async def test(limiter: RateLimiter, key_id: uuid.UUID) -> None:
        first = await _count_admitted(limiter, key_id=key_id, at=T0, tries=5)
        after_an_hour = await _count_admitted(limiter, key_id=key_id, at=T0 + timedelta(hours=1), tries=10)

        assert (first, after_an_hour) == (3, 3)

    _run(settings, per_minute=3, test=test)


def test_a_take_stamped_before_the_last_one_admits_nothing_extra(settings: Settings) -> None:
    # Replicas' transactions start in one order and reach the row in another.
    async def test(limiter: RateLimiter, key_id: uuid.UUID) -> None:
        later = await _count_admitted(limiter, key_id=key_id, at=T0 + timedelta(seconds=1), tries=2)
        earlier = await _count_admitted(limiter, key_id=key_id, at=T0, tries=2)

        assert (later, earlier) == (2, 0)

    _run(settings, per_minute=2, test=test)


def test_concurrent_takes_admit_exactly_the_limit(settings: Settings) -> None:
    async def test(limiter: RateLimiter, key_id: uuid.UUID) -> None:
        results = await asyncio.gather(*(_admitted(limiter, key_id=key_id, at=T0) for _ in range(60)))

        assert sum(results) == 20

    _run(settings, per_minute=20, test=test)


def test_limit_zero_is_unlimited_and_keeps_no_bucket(settings: Settings) -> None:
    async def test(limiter: RateLimiter, key_id: uuid.UUID) -> None:
        admitted = await _count_admitted(limiter, key_id=key_id, at=T0, tries=50)

        assert admitted == 50
        assert _bucket_count(settings, key_id=key_id) == 0

    _run(settings, per_minute=0, test=test)


def test_buckets_that_are_full_again_are_deleted_and_others_kept(settings: Settings) -> None:
    async def test(limiter: RateLimiter, key_id: uuid.UUID) -> None:
        now = datetime.now(UTC)
        await limiter.check(key_id=key_id, scope="identify", at=now - timedelta(minutes=2))  # full again at -1:59
        await limiter.forget_idle()
        with_idle_gone = await _count_admitted(limiter, key_id=key_id, at=now + timedelta(hours=1), tries=1)
        await limiter.forget_idle()  # that take is full again only in an hour: kept
        kept = await _count_admitted(limiter, key_id=key_id, at=now + timedelta(hours=1), tries=1)

        assert with_idle_gone == 1
        assert kept == 0
        assert _bucket_count(settings, key_id=key_id) == 1

    _run(settings, per_minute=1, test=test)
