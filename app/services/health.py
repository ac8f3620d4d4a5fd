"""Readiness from real probes: the models answer a fixed input, and the database its schema version."""

from __future__ import annotations

import time
from dataclasses import dataclass

from app.db.migrate import head_revision
from app.db.session import Database
from app.db.supervisor import EmbeddedSupervisor
from app.errors import DeadlineExceededError, OverloadedError
from app.services.analysis import FaceAnalyser

# A model probe costs one small detection and one embedding; at most one every this many seconds.
MODEL_PROBE_EVERY_S = 30.0


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str]  # model, database, schema: "ok" or what is wrong
    engine: dict[str, str]  # which backends run

    @property
    def ready(self) -> bool:
        return all(value == "ok" for value in self.checks.values())


class HealthService:
    def __init__(
        self, *, database: Database, analyser: FaceAnalyser, supervisor: EmbeddedSupervisor | None = None
    ) -> None:
        self._database = database
        self._analyser = analyser
        self._supervisor = supervisor
        self._model_probed_at = -MODEL_PROBE_EVERY_S
        self._model_status = "not probed yet"

    async def readiness(self) -> Readiness:
        checks = {"model": await self._model_check(), **(await self._database_checks())}
        return Readiness(checks=checks, engine=self._analyser.description.as_dict())

    async def _model_check(self) -> str:
        now = time.monotonic()
        if now - self._model_probed_at < MODEL_PROBE_EVERY_S:
            return self._model_status
        try:
            await self._analyser.probe()
            self._model_status = "ok"
        except (OverloadedError, DeadlineExceededError):
            return self._model_status  # busy serving: the last probe's answer stands
        except Exception as error:  # noqa: BLE001 - any failure means "not ready", reported as text
            self._model_status = f"probe failed: {type(error).__name__}: {error}"
        self._model_probed_at = now
        return self._model_status

    async def _database_checks(self) -> dict[str, str]:
        if not self._database.ready:
            return {"database": f"waiting for {self._database.waiting_for}", "schema": "unknown"}
        if self._supervisor is not None and self._supervisor.outage is not None:
            return {"database": f"unreachable: {self._supervisor.outage}", "schema": "unknown"}
        try:
            current = await self._database.schema_revision()
        except Exception as error:  # noqa: BLE001 - any failure here means "not ready", reported as text
            return {"database": f"unreachable: {type(error).__name__}", "schema": "unknown"}
        if current != head_revision():
            return {"database": "ok", "schema": f"at {current}, expected {head_revision()}: run `facerec db upgrade`"}
        return {"database": "ok", "schema": "ok"}
