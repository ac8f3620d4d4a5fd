"""Finding, downloading and verifying the weights file, against real files and a real local HTTP server."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from app.engine.weights import WeightsSource, resolve_weights
from app.errors import WeightsUnavailableError
from tests.local_http import closed_port_url, serve_directory

FILENAME = "20180402-114759-vggface2.pt"
FAKE_WEIGHTS = b"not really weights, but hashed like them\n" * 2000
FAKE_SHA256 = hashlib.sha256(FAKE_WEIGHTS).hexdigest()
OTHER_SHA256 = hashlib.sha256(b"some other file").hexdigest()


@pytest.fixture(scope="module")
def weights_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of FAKE_WEIGHTS on a local HTTP server."""
    served = tmp_path_factory.mktemp("served")
    (served / FILENAME).write_bytes(FAKE_WEIGHTS)
    with serve_directory(served) as base_url:
        yield f"{base_url}/{FILENAME}"


def make_source(*, model_dir: Path, url: str, explicit_path: Path | None = None) -> WeightsSource:
    return WeightsSource(
        explicit_path=explicit_path, model_dir=model_dir, filename=FILENAME, url=url, sha256=FAKE_SHA256
    )


def test_resolve_weights_returns_verified_file_in_model_dir_without_downloading(tmp_path: Path) -> None:
    (tmp_path / FILENAME).write_bytes(FAKE_WEIGHTS)
    source = make_source(model_dir=tmp_path, url=closed_port_url(FILENAME))

    path = resolve_weights(source, allow_download=True)

    assert path == tmp_path / FILENAME


def test_resolve_weights_returns_verified_explicit_path(tmp_path: Path) -> None:
    explicit = tmp_path / "my-weights.pt"
    explicit.write_bytes(FAKE_WEIGHTS)
    source = make_source(model_dir=tmp_path / "models", url=closed_port_url(FILENAME), explicit_path=explicit)

    path = resolve_weights(source, allow_download=False)

    assert path == explicit


def test_resolve_weights_rejects_hash_mismatch_naming_path_expected_hash_and_setting(tmp_path: Path) -> None:
    explicit = tmp_path / "tampered.pt"
    explicit.write_bytes(FAKE_WEIGHTS + b"tampered")
    source = replace(
        make_source(model_dir=tmp_path, url=closed_port_url(FILENAME), explicit_path=explicit), sha256=OTHER_SHA256
    )

    with pytest.raises(WeightsUnavailableError) as caught:
        resolve_weights(source, allow_download=True)

    message = str(caught.value)
    assert str(explicit) in message
    assert OTHER_SHA256 in message
    assert hashlib.sha256(explicit.read_bytes()).hexdigest() in message
    assert "FACEREC_WEIGHTS_SHA256" in message


def test_resolve_weights_missing_explicit_path_raises_naming_path_url_and_fetch_command(
    tmp_path: Path, weights_url: str
) -> None:
    explicit = tmp_path / "nowhere" / "weights.pt"
    source = make_source(model_dir=tmp_path / "models", url=weights_url, explicit_path=explicit)

    with pytest.raises(WeightsUnavailableError) as caught:
        resolve_weights(source, allow_download=True)

    message = str(caught.value)
    assert str(explicit) in message
    assert weights_url in message
    assert "facerec models fetch" in message
    assert not (tmp_path / "models").exists(), "an explicit path must never trigger a download"


def test_resolve_weights_missing_file_with_downloads_off_raises_naming_path_url_and_fetch_command(
    tmp_path: Path, weights_url: str
) -> None:
    source = make_source(model_dir=tmp_path / "models", url=weights_url)

    with pytest.raises(WeightsUnavailableError) as caught:
        resolve_weights(source, allow_download=False)

    message = str(caught.value)
    assert str(tmp_path / "models" / FILENAME) in message
    assert weights_url in message
    assert "facerec models fetch" in message
    assert "FACEREC_ALLOW_DOWNLOAD" in message
    assert not (tmp_path / "models").exists()


def test_resolve_weights_downloads_verified_file_and_leaves_no_temp_file(tmp_path: Path, weights_url: str) -> None:
    model_dir = tmp_path / "models"
    source = make_source(model_dir=model_dir, url=weights_url)

    path = resolve_weights(source, allow_download=True)

    assert path == model_dir / FILENAME
    assert path.read_bytes() == FAKE_WEIGHTS
    assert sorted(model_dir.iterdir()) == [path]


def test_resolve_weights_download_with_wrong_hash_raises_and_leaves_no_file(tmp_path: Path, weights_url: str) -> None:
    model_dir = tmp_path / "models"
    source = replace(make_source(model_dir=model_dir, url=weights_url), sha256=OTHER_SHA256)

    with pytest.raises(WeightsUnavailableError) as caught:
        resolve_weights(source, allow_download=True)

    message = str(caught.value)
    assert weights_url in message
    assert FAKE_SHA256 in message
    assert OTHER_SHA256 in message
    assert ".part" not in message, "the message must not point at a temp file that no longer exists"
    assert list(model_dir.iterdir()) == []


def test_resolve_weights_unreachable_url_with_downloads_on_raises_and_leaves_no_file(tmp_path: Path) -> None:
    model_dir = tmp_path / "models"
    url = closed_port_url(FILENAME)
    source = make_source(model_dir=model_dir, url=url)

    with pytest.raises(WeightsUnavailableError) as caught:
        resolve_weights(source, allow_download=True)

    message = str(caught.value)
    assert "download failed" in message
    assert url in message
    assert not (model_dir / FILENAME).exists()
    assert list(model_dir.glob("*.part")) == []
