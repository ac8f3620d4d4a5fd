"""The CLI's remote mode: an HTTP client of the service's public API (--url, --key).

Each method sends one request and returns the API's own response schema, so a command prints the
same JSON whether it ran here or on the service. An error answer becomes RemoteError with the
API's code and message; the caller decides whether to retry (see app.cli.retry).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import StrEnum
from typing import Any, TypeVar

import httpx
import pydantic

from app import __version__
from app.schemas import (
    DetectResponse,
    EnrollResponse,
    FaceList,
    IdentifyResponse,
    KeyIssued,
    KeyList,
    KeyRead,
    SubjectDeleted,
    SubjectPage,
    SubjectRead,
    VerifyResponse,
)
from app.scopes import Scope
from app.services.enrollment_records import EnrollRequest

M = TypeVar("M", bound=pydantic.BaseModel)

CONNECT_TIMEOUT_S = 5.0
# Reads wait for the model: a busy service answers 503 DEADLINE_EXCEEDED after its own deadline (30 s).
READ_TIMEOUT_S = 60.0
_RETRIED_STATUSES = {429, 503}  # the service says "not now" and has changed nothing


class Failure(StrEnum):
    """What a remote error means for the exit code."""

    USAGE = "usage"  # a bad key, scope or URL: configuration, the same for every item
    UNAVAILABLE = "unavailable"  # unreachable, busy or failing
    REFUSED = "refused"  # this item was refused (4xx)


class RemoteError(Exception):
    """An error answer of the service (or none at all): the API's code, message and details."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int | None,
        details: dict[str, Any] | None = None,
        retry_after_s: float | None = None,
        transient: bool = False,
        failure: Failure | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details or {}
        self.retry_after_s = retry_after_s
        self.transient = transient  # retrying the same request may succeed and cannot do anything twice
        self.failure = failure or _failure_of(status)


def _failure_of(status: int | None) -> Failure:
    if status in (401, 403):
        return Failure.USAGE
    if status is None or status >= 500 or status == 429:
        return Failure.UNAVAILABLE
    return Failure.REFUSED


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _error_of(response: httpx.Response, *, idempotent: bool) -> RemoteError:
    status = response.status_code
    failure = None
    try:
        body = response.json()["error"]
        code, message, details = str(body["code"]), str(body["message"]), dict(body.get("details") or {})
    except (ValueError, KeyError, TypeError):
        # Not facerec's error shape: a proxy in front of a service that is down, or another server.
        code, details = f"HTTP_{status}", {}
        message = f"{response.url} answered {status} {response.reason_phrase} without facerec's error body"
        if _failure_of(status) is Failure.REFUSED:
            failure, message = Failure.USAGE, f"{message}: check --url"
    transient = status in _RETRIED_STATUSES or (idempotent and status in (502, 504))
    return RemoteError(
        message,
        code=code,
        status=status,
        details=details,
        retry_after_s=_retry_after(response),
        transient=transient,
        failure=failure,
    )


class ApiClient:
    """The public API's routes, one method each."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self.url = str(client.base_url)

    @classmethod
    @asynccontextmanager
    async def open(cls, url: str, *, key: str | None) -> AsyncIterator[ApiClient]:
        headers = {"User-Agent": f"facerec-cli/{__version__}"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        try:
            client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout)
        except (httpx.InvalidURL, ValueError) as error:
            raise RemoteError(
                f"{url!r} is not a usable URL ({error}).", code="BAD_URL", status=None, failure=Failure.USAGE
            ) from None
        async with client:
            yield cls(client)

    async def _call(self, route: str, *, model: type[M], idempotent: bool, **sent: Any) -> M:
        """route: "METHOD /path"."""
        method, path = route.split(" ", 1)
        try:
            response = await self._client.request(method, path, **sent)
        except httpx.UnsupportedProtocol as error:
            raise RemoteError(
                f"{self.url} is not an http(s) URL ({error}).", code="BAD_URL", status=None, failure=Failure.USAGE
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            # The request never reached the service: retrying cannot do anything twice.
            raise RemoteError(
                f"Cannot reach {self.url} ({type(error).__name__}: {error}).",
                code="SERVICE_UNREACHABLE",
                status=None,
                transient=True,
            ) from None
        except httpx.TransportError as error:
            raise RemoteError(
                f"No answer from {self.url} ({type(error).__name__}: {error}).",
                code="SERVICE_UNREACHABLE",
                status=None,
                transient=idempotent,
            ) from None
        if response.is_error:
            raise _error_of(response, idempotent=idempotent)
        try:
            return model.model_validate(response.json())
        except ValueError:  # not JSON, or not this schema (pydantic's ValidationError is a ValueError)
            raise RemoteError(
                f"{self.url}{path} answered {response.status_code} with something facerec's API does not send: "
                "check --url.",
                code="NOT_A_FACEREC_SERVICE",
                status=response.status_code,
                failure=Failure.USAGE,
            ) from None

    # --- faces ------------------------------------------------------------------------------------

    async def identify(self, image: bytes, *, collection: str, top_k: int) -> IdentifyResponse:
        form = {"collection": collection, "top_k": str(top_k)}
        files = {"image": ("image", image)}
        return await self._call("POST /identify", model=IdentifyResponse, idempotent=True, data=form, files=files)

    async def verify(
        self, image: bytes, *, image_b: bytes | None, subject: str | None, collection: str
    ) -> VerifyResponse:
        form = {"collection": collection} | ({} if subject is None else {"subject": subject})
        files = {"image": ("image", image)} | ({} if image_b is None else {"image_b": ("image_b", image_b)})
        return await self._call("POST /verify", model=VerifyResponse, idempotent=True, data=form, files=files)

    async def detect(self, image: bytes) -> DetectResponse:
        files = {"image": ("image", image)}
        return await self._call("POST /detect", model=DetectResponse, idempotent=True, files=files)

    async def enroll(self, request: EnrollRequest) -> EnrollResponse:
        """With request.idempotency_key, a retry after a lost answer replays it instead of enrolling twice."""
        form = {
            "subject": request.subject,
            "collection": request.collection,
            "on_multiple_faces": request.on_multiple_faces.value,
            "on_conflict": request.on_conflict.value,
            "on_low_similarity": request.on_low_similarity.value,
        }
        headers = {} if request.idempotency_key is None else {"Idempotency-Key": request.idempotency_key}
        return await self._call(
            "POST /enroll",
            model=EnrollResponse,
            idempotent=request.idempotency_key is not None,
            data=form,
            files={"image": ("image", request.data)},
            headers=headers,
        )

    # --- gallery ----------------------------------------------------------------------------------

    async def subjects(
        self, *, collection: str | None, name_contains: str | None, limit: int, offset: int
    ) -> SubjectPage:
        query: dict[str, str | int] = {"limit": limit, "offset": offset}
        if collection is not None:
            query["collection"] = collection
        if name_contains is not None:
            query["q"] = name_contains
        return await self._call("GET /subjects", model=SubjectPage, idempotent=True, params=query)

    async def subject(self, subject_id: uuid.UUID) -> SubjectRead:
        return await self._call(f"GET /subjects/{subject_id}", model=SubjectRead, idempotent=True)

    async def faces(self, subject_id: uuid.UUID) -> FaceList:
        return await self._call(f"GET /subjects/{subject_id}/faces", model=FaceList, idempotent=True)

    async def delete_subject(self, subject_id: uuid.UUID) -> SubjectDeleted:
        return await self._call(f"DELETE /subjects/{subject_id}", model=SubjectDeleted, idempotent=False)

    # --- keys (admin scope) -----------------------------------------------------------------------

    async def create_key(self, *, name: str, scopes: list[Scope], collections: list[str] | None) -> KeyIssued:
        body = {"name": name, "scopes": [scope.value for scope in scopes], "collections": collections}
        return await self._call("POST /keys", model=KeyIssued, idempotent=False, json=body)

    async def keys(self) -> KeyList:
        return await self._call("GET /keys", model=KeyList, idempotent=True)

    async def revoke_key(self, key_id: uuid.UUID) -> KeyRead:
        return await self._call(f"DELETE /keys/{key_id}", model=KeyRead, idempotent=False)

    async def rotate_key(self, key_id: uuid.UUID) -> KeyIssued:
        return await self._call(f"POST /keys/{key_id}/rotate", model=KeyIssued, idempotent=False)
