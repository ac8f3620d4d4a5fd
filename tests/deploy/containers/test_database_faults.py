"""The database restarted, killed and crashed under load: the replicas answer 503
DATABASE_UNAVAILABLE with Retry-After meanwhile (never a 500, never a hang), recover by themselves,
and every enrolment that answered 2xx is stored exactly once."""

from __future__ import annotations

import hashlib
import os
import signal
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.deploy.containers import load
from tests.deploy.containers.conftest import Replica, Report, unique
from tests.deploy.containers.stack import Stack

RECOVERY_DEADLINE_S = 90.0
OUTAGE_CODE = "DATABASE_UNAVAILABLE"
DOWN_FOR_S = 5.0  # how long `docker kill` keeps the db down before it is started again


class Enroller:
    """Enrols a new photo per call, retrying a refused one with the same Idempotency-Key (as the
    README advises) until it answers 2xx; remembers what each 2xx stored."""

    def __init__(self, *, api: httpx.Client, collection: str, subject: str) -> None:
        self.api, self.collection, self.subject = api, collection, subject
        self.stored: dict[str, str] = {}  # face id -> SHA-256 of the photo enrolled
        self.subject_id: str | None = None
        self._index = 0
        self._photo = load.distinct_photo(0)

    def __call__(self) -> httpx.Response:
        response = load.enroll(
            self.api,
            subject=self.subject,
            collection=self.collection,
            image=self._photo,
            idempotency_key=f"{self.collection}-{self._index}",
        )
        if response.status_code in {200, 201}:
            body = response.json()
            self.stored[body["face_id"]] = hashlib.sha256(self._photo).hexdigest()
            self.subject_id = body["subject_id"]
            self._index += 1
            self._photo = load.distinct_photo(self._index)
        return response


def outage_for(seconds: float) -> Callable[[list[load.Sample]], bool]:
    """Holds once refusals have gone on for `seconds`, from the first to the latest."""

    def holds(samples: list[load.Sample]) -> bool:
        refused = [item.t for item in samples if item.status == 503]
        return len(refused) >= 3 and refused[-1] - refused[0] >= seconds

    return holds


def restart_with_compose(stack: Stack, db: str, loop: load.Loop) -> None:
    stack.compose("restart", "db")


def kill_with_docker(stack: Stack, db: str, loop: load.Loop) -> None:
    stack.docker("kill", "--signal", "KILL", db)
    # Docker counts `docker kill` as a manual stop: the restart policy leaves the db down until an
    # operator starts it, here once the replicas have been refusing requests for a while.
    loop.wait_for(outage_for(DOWN_FOR_S), deadline_s=30 + DOWN_FOR_S, what="503s while the db is down")
    loop.timeline.mark("docker compose start db")
    stack.compose("start", "db")


def crash(stack: Stack, db: str, loop: load.Loop) -> None:
    """SIGKILL to the server (PID 1 of the container) from the host: what the restart policy is for."""
    before = stack.inspect(db)
    os.kill(int(before["State"]["Pid"]), signal.SIGKILL)
    load.wait_until(
        lambda: stack.inspect(db)["RestartCount"] > before["RestartCount"] and stack.inspect(db)["State"]["Running"],
        deadline_s=30,
        what="the restart policy restarting the db",
    )
    loop.timeline.mark("restarted by the restart policy")


FAULTS: dict[str, tuple[str, Callable[[Stack, str, load.Loop], None]]] = {
    "compose-restart": ("docker compose restart db", restart_with_compose),
    "docker-kill": ("docker kill -s KILL <db>", kill_with_docker),
    "crash": ("kill -9 of the db's postgres from the host", crash),
}


def app_starts(stack: Stack) -> dict[str, tuple[Any, Any]]:
    return {
        name: (details["State"]["StartedAt"], details["RestartCount"])
        for name in stack.containers("app")
        for details in [stack.inspect(name)]
    }


def refusals_are_database_unavailable_with_retry_after(samples: list[load.Sample]) -> list[load.Sample]:
    """The samples that are anything but a 2xx or a proper outage answer."""
    return [
        item
        for item in samples
        if not (
            item.status in {200, 201}
            or (item.status == 503 and item.code == OUTAGE_CODE and (item.retry_after or "").isdigit())
        )
    ]


@pytest.mark.parametrize("fault", list(FAULTS))
def test_replicas_answer_503_through_a_database_fault_and_recover_without_a_restart(
    fault: str, stack: Stack, replicas: list[Replica], admin_key: str, report: Report
) -> None:
    description, inject = FAULTS[fault]
    collection = unique(f"faults-{fault}")
    (db,) = stack.containers("db")
    identify_api = load.client(base_url=replicas[0].url, key=admin_key)
    enroll_api = load.client(base_url=replicas[1].url, key=admin_key)
    seeded = load.enroll(identify_api, subject="seed", collection=collection, image=load.distinct_photo(10**6))
    assert seeded.status_code == 201, seeded.text
    apps_before = app_starts(stack)
    identified, enrolled = load.Timeline(), load.Timeline()
    enrolled.start = identified.start
    enroller = Enroller(api=enroll_api, collection=collection, subject=unique("during-faults"))
    probe = load.photo()

    with (
        load.Loop(
            name="identify",
            request=lambda: load.identify(identify_api, collection=collection, image=probe),
            timeline=identified,
        ) as identify_loop,
        load.Loop(name="enroll", request=enroller, timeline=enrolled),
    ):
        identify_loop.wait_for(load.ok_streak(3, after=0.0), deadline_s=60, what="200s before the fault")
        fault_t = identified.mark(f"fault: {description}")
        enrolled.mark(f"fault: {description}")
        inject(stack, db, identify_loop)
        stack.wait_healthy([db], deadline_s=RECOVERY_DEADLINE_S)
        db_back = identified.now()
        for timeline in (identified, enrolled):
            timeline.mark("db healthy")
        identify_loop.wait_for(
            load.ok_streak(5, after=db_back), deadline_s=RECOVERY_DEADLINE_S, what="200s after the db is back"
        )
        enrolled_by_then = len(enroller.stored)
        load.wait_until(
            lambda: len(enroller.stored) >= enrolled_by_then + 2,
            deadline_s=RECOVERY_DEADLINE_S,
            what="enrolments succeeding after the db is back",
        )
    assert enroller.subject_id is not None
    faces = identify_api.get(f"/subjects/{enroller.subject_id}/faces")
    identify_api.close()
    enroll_api.close()

    report.line(f"database fault {fault} ({description}): identify through {replicas[0].container}")
    for line in identified.lines():
        report.line(f"  {line}")
    report.line(f"  enrol through {replicas[1].container}, retrying refusals with their Idempotency-Key:")
    for line in enrolled.lines():
        report.line(f"  {line}")
    report.line(f"  identify: {load.outage_summary(identified.snapshot(), fault_t=fault_t)}")
    report.line(
        f"  enrol: {len(enroller.stored)} answered 2xx, {len(enrolled.snapshot()) - len(enroller.stored)} refused"
    )
    assert refusals_are_database_unavailable_with_retry_after(identified.snapshot()) == []
    assert refusals_are_database_unavailable_with_retry_after(enrolled.snapshot()) == []
    assert app_starts(stack) == apps_before, "a replica was restarted"
    assert faces.status_code == 200, faces.text
    items = faces.json()["items"]
    assert sorted(face["id"] for face in items) == sorted(enroller.stored)
    assert sorted(face["image_sha256"] for face in items) == sorted(set(enroller.stored.values()))
