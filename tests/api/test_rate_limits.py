"""Rate limits are shared by every replica: two instances of the app over one database, one key."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient

from app.db.embedded import EmbeddedPostgres
from app.services.access import Scope
from tests.api.helpers import error_code
from tests.conftest import issue_key, make_settings, running_app

LIMIT_PER_MINUTE = 4  # one request every 15 s: the test's requests all fall well within one interval


def test_two_replicas_sharing_a_key_admit_the_limit_between_them(
    postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path: Path
) -> None:
    settings = make_settings(
        postgres=postgres,
        weights_file=weights_file,
        data_dir=tmp_path,
        rate_limit_identify_per_minute=LIMIT_PER_MINUTE,
    )
    statuses: dict[str, list[int]] = {"first": [], "second": []}
    refusals: list[tuple[str, str]] = []

    with running_app(settings) as first, running_app(settings) as second:
        token = issue_key(first, [Scope.IDENTIFY])
        headers = {"X-API-Key": token, "Authorization": ""}

        def call(name: str, client: TestClient) -> None:
            for _ in range(6):
                response = client.post("/identify", headers=headers)  # no image: admitted requests are 422
                statuses[name].append(response.status_code)
                if response.status_code == 429:
                    refusals.append((error_code(response), response.headers["Retry-After"]))

        started = time.monotonic()
        threads = [threading.Thread(target=call, args=item) for item in (("first", first), ("second", second))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        elapsed = time.monotonic() - started

    admitted = {name: sum(status == 422 for status in answered) for name, answered in statuses.items()}
    assert elapsed < 60 / LIMIT_PER_MINUTE  # so no request was refilled meanwhile
    assert sorted(statuses["first"] + statuses["second"]) == [422] * LIMIT_PER_MINUTE + [429] * 8
    assert sum(admitted.values()) == LIMIT_PER_MINUTE  # not LIMIT_PER_MINUTE per replica
    assert {code for code, _ in refusals} == {"RATE_LIMITED"}
    assert all(1 <= int(wait) <= 60 for _, wait in refusals)
