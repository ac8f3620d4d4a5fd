"""Commands on this machine: the services over the local database, and the model when one is needed.

Imported only when a command runs locally: the database and model libraries cost a remote command
seconds of start-up it has no use for.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from app.api import convert
from app.composition import build_analyser, open_engine, open_services, policy_of
from app.config import Settings
from app.schemas import (
    DetectResponse,
    EnrollResponse,
    FaceList,
    IdentifyResponse,
    KeyIssued,
    KeyList,
    KeyRead,
    MeasuredFaceRead,
    SubjectDeleted,
    SubjectPage,
    SubjectRead,
    VerifyResponse,
)
from app.scopes import Scope
from app.services.access import SYSTEM
from app.services.analysis import FaceAnalyser
from app.services.container import Services
from app.services.enrollment import enrolment_face_choice
from app.services.enrollment_records import EnrollRequest
from app.services.gallery import SubjectPageRequest
from app.services.quality import MultipleFacesPolicy
from app.services.recognition import IdentifyRequest, VerifyRequest


class LocalBackend:
    """The services of this process, called as the service itself (no key, every scope)."""

    def __init__(self, config: Settings, *, services: Services | None, analyser: FaceAnalyser | None) -> None:
        self._config = config
        self._services = services
        self._analyser = analyser
        self._policy = policy_of(config)

    @property
    def services(self) -> Services:
        assert self._services is not None, "opened without the database"
        return self._services

    @property
    def analyser(self) -> FaceAnalyser:
        assert self._analyser is not None, "opened without the model"
        return self._analyser

    async def identify(self, image: bytes, *, collection: str, top_k: int) -> IdentifyResponse:
        assert self.services.recognition is not None
        request = IdentifyRequest(
            data=image, collection=collection, top_k=top_k, max_faces=self._config.default_max_faces
        )
        return convert.identify_response(await self.services.recognition.identify(request, principal=SYSTEM))

    async def verify(
        self, image: bytes, *, image_b: bytes | None, subject: str | None, collection: str
    ) -> VerifyResponse:
        assert self.services.recognition is not None
        request = VerifyRequest(data=image, data_b=image_b, subject=subject, collection=collection)
        return convert.verify_response(await self.services.recognition.verify(request, principal=SYSTEM))

    async def detect(self, image: bytes) -> DetectResponse:
        return convert.detect_response(await self.analyser.detect(image), limits=self._policy.quality)

    async def enroll(self, request: EnrollRequest) -> EnrollResponse:
        assert self.services.enrollment is not None
        result = await self.services.enrollment.enroll(request, principal=SYSTEM)
        return convert.enroll_response(result, limits=self._policy.quality)

    async def would_enroll(self, image: bytes, *, on_multiple_faces: MultipleFacesPolicy) -> MeasuredFaceRead:
        """The face an enrolment would store, or the error it would refuse the photo with; stores nothing.

        The guards that compare with the gallery (a second name, a mislabelled photo) are not run.
        """
        detection = await self.analyser.detect(image)
        chosen = enrolment_face_choice(self._policy, on_multiple_faces=on_multiple_faces)(detection.faces)
        return convert.measured_face(chosen.faces[0], limits=self._policy.quality)

    async def subjects(
        self, *, collection: str | None, name_contains: str | None, limit: int, offset: int
    ) -> SubjectPage:
        page = SubjectPageRequest(collection=collection, name_contains=name_contains, limit=limit, offset=offset)
        records, total = await self.services.gallery.list_subjects(page, principal=SYSTEM)
        items = [convert.subject(record) for record in records]
        return SubjectPage(items=items, total=total, limit=page.limit, offset=page.offset)

    async def subject(self, subject_id: uuid.UUID) -> SubjectRead:
        return convert.subject(await self.services.gallery.get_subject(subject_id, principal=SYSTEM))

    async def faces(self, subject_id: uuid.UUID) -> FaceList:
        records = await self.services.gallery.list_faces(subject_id, principal=SYSTEM)
        return FaceList(items=[convert.stored_face(record) for record in records])

    async def delete_subject(self, subject_id: uuid.UUID) -> SubjectDeleted:
        receipt = await self.services.gallery.delete_subject(subject_id, principal=SYSTEM)
        return convert.subject_deleted(receipt)

    async def create_key(self, *, name: str, scopes: list[Scope], collections: list[str] | None) -> KeyIssued:
        issued = await self.services.keys.create(name=name, scopes=scopes, collections=collections, principal=SYSTEM)
        return convert.key_issued(issued)

    async def keys(self) -> KeyList:
        return KeyList(items=[convert.key(record) for record in await self.services.keys.list()])

    async def revoke_key(self, key_id: uuid.UUID) -> KeyRead:
        return convert.key(await self.services.keys.revoke(key_id, principal=SYSTEM))

    async def rotate_key(self, key_id: uuid.UUID) -> KeyIssued:
        issued = await self.services.keys.rotate(key_id, principal=SYSTEM)
        return convert.key_issued(issued)


@asynccontextmanager
async def open_local(config: Settings, *, database: bool, model: bool, db_wait_s: float) -> AsyncIterator[LocalBackend]:
    """This machine's database (migrated; DATABASE_UNAVAILABLE past db_wait_s) and, if asked, the model."""
    if database:
        async with open_services(config, with_engine=model, ready_timeout_s=db_wait_s) as services:
            yield LocalBackend(config, services=services, analyser=services.analyser)
        return
    async with AsyncExitStack() as stack:
        engine = await asyncio.to_thread(open_engine, config) if model else None
        analyser = None if engine is None else build_analyser(config, engine=engine, stack=stack)
        yield LocalBackend(config, services=None, analyser=analyser)
