"""The Metrics object on its own: database availability from readiness and the last unit of work."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

from app.db.session import Database
from app.services.metrics import Metrics


@dataclass
class StubDatabase:
    ready: bool


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, (name, labels)
    return value


def test_database_up_follows_readiness_and_the_last_unit_of_work() -> None:
    metrics = Metrics(gallery_refresh_s=30)
    database = StubDatabase(ready=False)

    async def watch() -> None:
        metrics.watch_database(cast(Database, database))

    asyncio.run(watch())
    seen: list[tuple[str, float]] = [("not ready", _value(metrics, "facerec_database_up"))]
    database.ready = True
    seen.append(("ready", _value(metrics, "facerec_database_up")))
    outcomes: list[Any] = ["unavailable", "audit", "ok", "audit"]
    for outcome in outcomes:
        metrics.database_outcome(outcome)
        seen.append((outcome, _value(metrics, "facerec_database_up")))

    assert seen == [("not ready", 0), ("ready", 1), ("unavailable", 0), ("audit", 0), ("ok", 1), ("audit", 1)]
    assert _value(metrics, "facerec_database_errors_total", kind="unavailable") == 1
    assert _value(metrics, "facerec_database_errors_total", kind="audit") == 2


def test_each_app_has_a_registry_of_its_own() -> None:
    first, second = Metrics(gallery_refresh_s=30), Metrics(gallery_refresh_s=30)

    first.observe_request(method="GET", route="/healthz", status=200, seconds=0.01)
    first.observe_request(method="BREW", route="unmatched", status=405, seconds=0.01)

    labels = {"method": "GET", "route": "/healthz", "status": "200"}
    assert _value(first, "facerec_http_requests_total", **labels) == 1
    assert second.registry.get_sample_value("facerec_http_requests_total", labels) is None
    assert _value(first, "facerec_http_requests_total", method="other", route="unmatched", status="405") == 1
