"""docker compose up with the project's compose file: a healthy db and app, the first key made
the README's way, and two replicas that share one gallery."""

from __future__ import annotations

import httpx

from tests.deploy.containers import load
from tests.deploy.containers.conftest import Replica, unique
from tests.deploy.containers.stack import Stack


def test_compose_up_brings_the_db_and_the_app_to_healthy(stack: Stack) -> None:
    (db,) = stack.containers("db")
    (app, *_) = stack.containers("app")

    readiness = httpx.get(f"{stack.base_url(app)}/readyz", timeout=load.REQUEST_TIMEOUT_S)

    assert stack.health(db) == "healthy"
    assert stack.health(app) == "healthy"
    assert readiness.status_code == 200, readiness.text
    assert set(readiness.json()["checks"].values()) == {"ok"}


def test_keys_create_in_the_app_container_issues_a_working_admin_key(stack: Stack, admin_key: str) -> None:
    (app, *_) = stack.containers("app")
    url = stack.base_url(app)

    with load.client(base_url=url, key=admin_key) as api:
        listed = api.get("/keys")
    anonymous = httpx.get(f"{url}/keys", timeout=load.REQUEST_TIMEOUT_S)

    assert listed.status_code == 200, listed.text
    assert anonymous.status_code == 401


def test_a_face_enrolled_through_one_replica_is_identified_through_the_other(
    replicas: list[Replica], admin_key: str
) -> None:
    collection, subject = unique("replicas"), unique("al-gore")
    first, second = replicas

    with load.client(base_url=first.url, key=admin_key) as api:
        enrolled = load.enroll(api, subject=subject, collection=collection, image=load.photo("lfw_al_gore/1.jpg"))
    assert enrolled.status_code == 201, enrolled.text
    with load.client(base_url=second.url, key=admin_key) as api:
        identified = load.identify(api, collection=collection, image=load.photo("lfw_al_gore/2.jpg"))
        faces = api.get(f"/subjects/{enrolled.json()['subject_id']}/faces")

    assert first.url != second.url
    assert identified.status_code == 200, identified.text
    match = identified.json()["faces"][0]["match"]
    assert match is not None
    assert (match["subject_id"], match["subject"]) == (enrolled.json()["subject_id"], subject)
    assert [face["id"] for face in faces.json()["items"]] == [enrolled.json()["face_id"]]
