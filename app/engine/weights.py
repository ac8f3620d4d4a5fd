"""Finding, fetching and verifying the InceptionResnetV1 weights file.

Every file is checked against the expected SHA-256 before torch ever reads it. Downloads go to a
temporary file beside the destination and are renamed into place only once verified, so an
interrupted fetch never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from app.errors import WeightsUnavailableError

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsSource:
    """Where the weights are expected, where they come from, and what they must hash to."""

    explicit_path: Path | None
    model_dir: Path
    filename: str
    url: str
    sha256: str

    @property
    def expected_path(self) -> Path:
        return self.explicit_path if self.explicit_path is not None else self.model_dir / self.filename


# The digests this process has computed, by the file's identity and version: `facerec serve`
# checks the weights before binding its port and the engine again as it loads them, and the
# ~112 MB file needs hashing only once while it is unchanged.
_digests: dict[tuple[int, int, int, int], str] = {}
_digests_lock = threading.Lock()


def sha256_of(path: Path) -> str:
    status = path.stat()
    version = (status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)
    with _digests_lock:
        known = _digests.get(version)
    if known is not None:
        return known
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    with _digests_lock:
        _digests[version] = digest.hexdigest()
    return digest.hexdigest()


def unavailable_message(source: WeightsSource, *, reason: str) -> str:
    """The one paragraph a user reads when the service refuses to start for want of weights."""
    return (
        f"facerec cannot start: {reason} The face-embedding weights (InceptionResnetV1, VGGFace2) "
        f"are expected at {source.expected_path} with SHA-256 {source.sha256}. They come from "
        f"{source.url}. On a machine with network access run `facerec models fetch --dest DIR`, "
        f"copy the file here and point FACEREC_WEIGHTS_PATH (or FACEREC_MODEL_DIR) at it; or allow "
        f"downloads with FACEREC_ALLOW_DOWNLOAD=true. The service never runs with random weights."
    )


def verify(path: Path, *, source: WeightsSource, described_as: str | None = None) -> None:
    """Raise WeightsUnavailableError unless the file hashes to source.sha256; described_as names it in the message."""
    actual = sha256_of(path)
    if actual != source.sha256:
        raise WeightsUnavailableError(
            unavailable_message(
                source,
                reason=f"{described_as or f'the weights file {path}'} has SHA-256 {actual}, not the expected one "
                f"(set FACEREC_WEIGHTS_SHA256 if you deliberately use other weights).",
            )
        )


def resolve_weights(source: WeightsSource, *, allow_download: bool) -> Path:
    """A verified weights file: the one on disk, or a fresh download when allowed."""
    path = source.expected_path
    if path.is_file():
        verify(path, source=source)
        return path
    if source.explicit_path is not None:
        raise WeightsUnavailableError(
            unavailable_message(source, reason=f"FACEREC_WEIGHTS_PATH={path} does not exist.")
        )
    if not allow_download:
        raise WeightsUnavailableError(
            unavailable_message(source, reason="the weights file is missing and downloads are off.")
        )
    try:
        return download(source, dest_dir=source.model_dir)
    except OSError as error:
        raise WeightsUnavailableError(
            unavailable_message(source, reason=f"the weights file is missing and the download failed ({error}).")
        ) from None


def download(source: WeightsSource, *, dest_dir: Path, timeout_s: float = 30.0) -> Path:
    """Fetch the weights into dest_dir with a progress bar; verify, then rename into place."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    final_path = dest_dir / source.filename
    descriptor, temp_name = tempfile.mkstemp(dir=dest_dir, prefix=f".{source.filename}.", suffix=".part")
    temp_path = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as out, urllib.request.urlopen(source.url, timeout=timeout_s) as response:  # noqa: S310 - Settings allows http(s) only
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=source.filename) as progress:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    progress.update(len(chunk))
        # Named by its URL: the temp file is deleted before the user reads the message.
        verify(temp_path, source=source, described_as=f"the file downloaded from {source.url}")
        temp_path.chmod(0o644)  # mkstemp makes it owner-only; the service may run as another user
        temp_path.replace(final_path)
    finally:
        temp_path.unlink(missing_ok=True)
    logger.info("weights downloaded to %s", final_path)
    return final_path
