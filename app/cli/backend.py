"""Where a command runs: on this machine (the local database and model) or through a service's API.

Both answer with the API's response schemas (app.cli.local converts the services' results the way
the routes do; app.cli.remote reads the service's), so a command prints the same JSON in both modes.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

from app.cli.common import cli_options, settings
from app.cli.remote import ApiClient
from app.cli.retry import RetryPolicy, retrying
from app.config import Settings
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

T = TypeVar("T")


class Backend(Protocol):
    """What the remote-capable commands call; ApiClient and LocalBackend both are one."""

    async def identify(self, image: bytes, *, collection: str, top_k: int) -> IdentifyResponse: ...

    async def verify(
        self, image: bytes, *, image_b: bytes | None, subject: str | None, collection: str
    ) -> VerifyResponse: ...

    async def detect(self, image: bytes) -> DetectResponse: ...

    async def enroll(self, request: EnrollRequest) -> EnrollResponse: ...

    async def subjects(
        self, *, collection: str | None, name_contains: str | None, limit: int, offset: int
    ) -> SubjectPage: ...

    async def subject(self, subject_id: uuid.UUID) -> SubjectRead: ...

    async def faces(self, subject_id: uuid.UUID) -> FaceList: ...

    async def delete_subject(self, subject_id: uuid.UUID) -> SubjectDeleted: ...

    async def create_key(self, *, name: str, scopes: list[Scope], collections: list[str] | None) -> KeyIssued: ...

    async def keys(self) -> KeyList: ...

    async def revoke_key(self, key_id: uuid.UUID) -> KeyRead: ...

    async def rotate_key(self, key_id: uuid.UUID) -> KeyIssued: ...


@asynccontextmanager
async def connect(
    config: Settings, *, url: str | None, key: str | None, model: bool, db_wait_s: float, database: bool = True
) -> AsyncIterator[Backend]:
    """The service at url (as an API client sending key), or this machine's database and model."""
    if url:
        async with ApiClient.open(url, key=key) as client:
            yield client
        return
    from app.cli.local import open_local

    async with open_local(config, database=database, model=model, db_wait_s=db_wait_s) as local:
        yield local


async def ask(
    call: Callable[[Backend], Awaitable[T]],
    *,
    url: str | None,
    key: str | None,
    model: bool,
    database: bool = True,
) -> T:
    """One call of a command, here or on the service at url, retried while the answer is "not now"."""
    config = settings()
    async with connect(
        config, url=url, key=key, model=model, database=database, db_wait_s=cli_options().db_wait_s
    ) as backend:
        return await retrying(lambda: call(backend), policy=RetryPolicy())
