"""GET /metrics: Prometheus' text format, what it counts, who may read it, and FACEREC_METRICS_PORT."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from app.db.embedded import EmbeddedPostgres
from app.db.repository.gallery import GalleryStatements
from app.engine.faces import EMBEDDING_DIM, Crops, Embeddings
from app.services.access import Scope
from app.services.metrics import Metrics
from tests.api.helpers import enrol, error_code, identify, post_photo
from tests.conftest import issue_key, make_settings, reset_database, running_app

FAMILIES = {
    "facerec_http_requests": "counter",
    "facerec_http_request_duration_seconds": "histogram",
    "facerec_inference_queue_depth": "gauge",
    "facerec_inference_queue_capacity": "gauge",
    "facerec_inference_refusals": "counter",
    "facerec_embedding_batch_size": "histogram",
    "facerec_detection_seconds": "histogram",
    "facerec_embedding_seconds": "histogram",
    "facerec_faces_per_image": "histogram",
    "facerec_database_up": "gauge",
    "facerec_database_errors": "counter",
    "facerec_collection_faces": "gauge",
    "facerec_collection_subjects": "gauge",
    "process_resident_memory_bytes": "gauge",
}
NO_KEY = {"Authorization": ""}


@dataclass
class Scrape:
    """One /metrics answer, parsed by prometheus-client's own parser."""

    types: dict[str, str]
    samples: list[Sample] = field(default_factory=list)

    def value(self, name: str, **labels: str) -> float:
        """The sample's value, or 0 when there is no such series (yet)."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert len(found) <= 1, (name, labels)
        return found[0] if found else 0.0

    def labels_of(self, name: str) -> list[dict[str, str]]:
        return [s.labels for s in self.samples if s.name == name]


def parse(text: str) -> Scrape:
    scrape = Scrape(types={})
    for family in text_string_to_metric_families(text):
        scrape.types[family.name] = family.type
        scrape.samples.extend(family.samples)
    return scrape


def scrape(client: TestClient, **headers: str) -> Scrape:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def app_metrics(client: TestClient) -> Metrics:
    metrics: Metrics = client.app_state["metrics"]
    return metrics


def test_metrics_answer_the_prometheus_text_format_with_every_family(client: TestClient) -> None:
    scraped = scrape(client)

    assert {name: scraped.types.get(name) for name in FAMILIES} == FAMILIES
    assert scraped.value("facerec_database_up") == 1
    assert scraped.value("process_resident_memory_bytes") > 50 * 2**20
    assert scraped.value("facerec_inference_queue_capacity") == 64
    assert {tuple(labels.items()) for labels in scraped.labels_of("facerec_inference_refusals_total")} == {
        (("code", "OVERLOADED"),),
        (("code", "DEADLINE_EXCEEDED"),),
    }
    assert {labels["kind"] for labels in scraped.labels_of("facerec_database_errors_total")} == {"unavailable", "audit"}


def test_enrol_and_identify_are_counted_timed_and_fill_the_model_histograms(
    client: TestClient, faces_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app_metrics(client).collection_sizes, "max_age_s", 0.0)  # count at every scrape
    before = scrape(client)

    enrolled = enrol(client, faces_dir, "lfw_al_gore/1.jpg", "Al Gore", collection="metrics-staff")
    identify(client, faces_dir, "lfw_al_gore/2.jpg", collection="metrics-staff")
    assert client.get(f"/subjects/{enrolled['subject_id']}").status_code == 200

    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    identify_labels = {"method": "POST", "route": "/identify"}
    assert delta("facerec_http_requests_total", **identify_labels, status="200") == 1
    assert delta("facerec_http_requests_total", method="POST", route="/enroll", status="201") == 1
    assert delta("facerec_http_requests_total", method="GET", route="/subjects/{subject_id}", status="200") == 1
    assert delta("facerec_http_request_duration_seconds_count", **identify_labels) == 1
    assert delta("facerec_http_request_duration_seconds_sum", **identify_labels) > 0
    assert not [
        labels for labels in after.labels_of("facerec_http_requests_total") if enrolled["subject_id"] in str(labels)
    ]
    assert delta("facerec_embedding_batch_size_count") >= 1
    assert delta("facerec_embedding_batch_size_sum") >= 2  # two faces: the enrolled one, the identified one
    assert delta("facerec_embedding_seconds_count") >= 1
    assert delta("facerec_detection_seconds_count") == 2
    assert delta("facerec_faces_per_image_count") == 2
    assert after.value("facerec_collection_faces", collection="metrics-staff") == 1
    assert after.value("facerec_collection_subjects", collection="metrics-staff") == 1


def test_answers_of_the_middlewares_and_unknown_paths_are_counted_by_route(client: TestClient) -> None:
    before = scrape(client)

    keyless = client.post("/identify", headers=NO_KEY)
    unknown = client.get(f"/no/such/{'x' * 40}")

    after = scrape(client)
    assert keyless.status_code == 401
    assert unknown.status_code == 404
    for labels in ({"route": "/identify", "status": "401"}, {"route": "unmatched", "status": "404"}):
        method = "POST" if labels["route"] == "/identify" else "GET"
        name = "facerec_http_requests_total"
        assert after.value(name, method=method, **labels) - before.value(name, method=method, **labels) == 1
    assert not [labels for labels in after.labels_of("facerec_http_requests_total") if "x" * 40 in labels["route"]]


def test_metrics_need_the_metrics_scope_or_admin(client: TestClient) -> None:
    identify_key = issue_key(client, [Scope.IDENTIFY])
    metrics_key = issue_key(client, [Scope.METRICS])

    keyless = client.get("/metrics", headers=NO_KEY)
    narrow = client.get("/metrics", headers={**NO_KEY, "X-API-Key": identify_key})
    scraper = client.get("/metrics", headers={**NO_KEY, "X-API-Key": metrics_key})
    admin = client.get("/metrics")

    assert keyless.status_code == 401
    assert error_code(keyless) == "UNAUTHENTICATED"
    assert narrow.status_code == 403
    assert error_code(narrow) == "INSUFFICIENT_SCOPE"
    assert scraper.status_code == 200
    assert admin.status_code == 200
    assert "facerec_http_requests_total" in scraper.text


class GatedEmbedder:
    """Embeds (every face alike) once the gate is open; says when a call is waiting at it."""

    backend = "gated"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()

    def embed(self, crops: Crops) -> Embeddings:
        self.waiting.set()
        self.gate.wait(timeout=60)
        return np.full((len(crops), EMBEDDING_DIM), EMBEDDING_DIM**-0.5, dtype=np.float32)


@dataclass
class PortApp:
    client: TestClient
    port: int
    embedder: GatedEmbedder


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def port_app(
    postgres: EmbeddedPostgres, weights_file: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PortApp]:
    """An app with FACEREC_METRICS_PORT, one admitted model call and a 2 s deadline, over a gated embedder."""
    port = free_port()
    settings = make_settings(
        postgres=postgres,
        weights_file=weights_file,
        data_dir=tmp_path_factory.mktemp("metrics-port"),
        metrics_port=port,
        max_pending_inferences=1,
        request_deadline_s=2.0,
        metrics_gallery_refresh_s=3600,
    )
    embedder = GatedEmbedder()
    with running_app(settings, embedder=embedder) as client:
        yield PortApp(client=client, port=port, embedder=embedder)


def test_metrics_port_serves_them_without_a_key_and_the_main_port_still_wants_the_scope(port_app: PortApp) -> None:
    metrics_key = issue_key(port_app.client, [Scope.METRICS])

    own_port = httpx.get(f"http://127.0.0.1:{port_app.port}/metrics", timeout=10)
    main_keyless = port_app.client.get("/metrics", headers=NO_KEY)
    main_scraper = port_app.client.get("/metrics", headers={**NO_KEY, "X-API-Key": metrics_key})

    assert own_port.status_code == 200
    assert {name: parse(own_port.text).types.get(name) for name in FAMILIES} == FAMILIES
    assert main_keyless.status_code == 401
    assert main_scraper.status_code == 200


def test_collection_counts_are_cached_between_scrapes(
    port_app: PortApp, postgres: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    reset_database(postgres.url)
    queries: list[int] = []
    counted = GalleryStatements.collection_sizes

    async def spy(self: GalleryStatements) -> Any:
        queries.append(1)
        return await counted(self)

    monkeypatch.setattr(GalleryStatements, "collection_sizes", spy)
    sizes = app_metrics(port_app.client).collection_sizes
    monkeypatch.setattr(sizes, "max_age_s", 0.0)
    stale = scrape(port_app.client)  # counts older than 0 s: counted now
    monkeypatch.setattr(sizes, "max_age_s", 3600.0)

    fresh = [scrape(port_app.client), parse(httpx.get(f"http://127.0.0.1:{port_app.port}/metrics", timeout=10).text)]

    assert len(queries) == 1
    assert stale.value("facerec_collection_subjects", collection="default") == 0
    assert [s.value("facerec_collection_faces", collection="default") for s in fresh] == [0, 0]


def _in_thread(call: Callable[[], httpx.Response]) -> tuple[threading.Thread, list[httpx.Response]]:
    answers: list[httpx.Response] = []
    thread = threading.Thread(target=lambda: answers.append(call()), daemon=True)
    thread.start()
    return thread, answers


def test_overloaded_and_deadline_exceeded_refusals_are_counted(port_app: PortApp, faces_dir: Path) -> None:
    client, embedder = port_app.client, port_app.embedder
    before = scrape(client)
    embedder.waiting.clear()
    embedder.gate.clear()
    try:
        held, answers = _in_thread(lambda: post_photo(client, "/identify", faces_dir, "lfw_al_gore/1.jpg"))
        assert embedder.waiting.wait(timeout=30)  # the one admitted model call is now taken
        busy = scrape(client)
        refused = post_photo(client, "/identify", faces_dir, "lfw_al_gore/2.jpg")
        held.join(timeout=30)  # answered at its 2 s deadline
    finally:
        embedder.gate.set()
    after = scrape(client)

    name = "facerec_inference_refusals_total"
    assert busy.value("facerec_inference_queue_depth") == 1
    assert refused.status_code == 503
    assert error_code(refused) == "OVERLOADED"
    assert [error_code(answer) for answer in answers] == ["DEADLINE_EXCEEDED"]
    assert after.value(name, code="OVERLOADED") - before.value(name, code="OVERLOADED") == 1
    assert after.value(name, code="DEADLINE_EXCEEDED") - before.value(name, code="DEADLINE_EXCEEDED") == 1
    answered_503 = {"method": "POST", "route": "/identify", "status": "503"}
    assert (
        after.value("facerec_http_requests_total", **answered_503)
        - before.value("facerec_http_requests_total", **answered_503)
        == 2
    )
