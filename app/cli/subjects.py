"""`facerec subjects`: list, show and delete enrolled people, here or through a service's API."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from app.cli.backend import Backend, ask
from app.cli.common import OK, JsonFlag, KeyOption, UrlOption, command, print_json, run
from app.schemas import FaceList, SubjectRead

app = typer.Typer(help="Enrolled subjects (people): list, show, delete; here or with --url.", no_args_is_help=True)

SubjectId = Annotated[uuid.UUID, typer.Argument(help="the subject's id (see `facerec subjects list`)")]


def _line(subject: SubjectRead) -> str:
    return f"{subject.id}  {subject.collection}  faces={subject.face_count}  name={subject.name!r}"


@app.command("list")
@command
def list_subjects(
    collection: Annotated[str | None, typer.Option(help="only this collection's subjects")] = None,
    q: Annotated[str | None, typer.Option("--q", help="only subjects whose name contains this")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="subjects per page")] = 100,
    offset: Annotated[int, typer.Option(min=0, help="subjects to skip")] = 0,
    url: UrlOption = None,
    key: KeyOption = None,
    as_json: JsonFlag = False,
) -> int:
    """List subjects by name, a page at a time."""
    answer = run(
        ask(
            lambda backend: backend.subjects(collection=collection, name_contains=q, limit=limit, offset=offset),
            url=url,
            key=key,
            model=False,
        )
    )
    if as_json:
        print_json(answer.model_dump(mode="json"))
        return OK
    for subject in answer.items:
        print(_line(subject))
    print(f"{len(answer.items)} of {answer.total} subjects (offset {answer.offset})")
    return OK


async def _with_faces(backend: Backend, *, subject_id: uuid.UUID) -> tuple[SubjectRead, FaceList]:
    return await backend.subject(subject_id), await backend.faces(subject_id)


@app.command()
@command
def show(subject_id: SubjectId, url: UrlOption = None, key: KeyOption = None, as_json: JsonFlag = False) -> int:
    """Show one subject and its enrolled faces (metadata only, never embeddings)."""
    subject, faces = run(
        ask(lambda backend: _with_faces(backend, subject_id=subject_id), url=url, key=key, model=False)
    )
    if as_json:
        print_json(subject.model_dump(mode="json") | {"faces": faces.model_dump(mode="json")["items"]})
        return OK
    print(_line(subject))
    print(f"  created {subject.created_at.isoformat()}, updated {subject.updated_at.isoformat()}")
    for face in faces.items:
        box = ", ".join(f"{value:.0f}" for value in (face.box.x1, face.box.y1, face.box.x2, face.box.y2))
        print(
            f"  face {face.id}  box [{box}]  probability {face.detection_probability:.3f}  model {face.model_id}  "
            f"sha256 {face.image_sha256[:12]}  created {face.created_at.isoformat()}"
        )
    return OK


@app.command()
@command
def delete(subject_id: SubjectId, url: UrlOption = None, key: KeyOption = None, as_json: JsonFlag = False) -> int:
    """Delete a subject and all its faces for good; prints the deletion receipt (also in the audit log)."""
    receipt = run(ask(lambda backend: backend.delete_subject(subject_id), url=url, key=key, model=False))
    if as_json:
        print_json(receipt.model_dump(mode="json"))
        return OK
    print(
        f"deleted subject {receipt.id} ({receipt.name!r} in {receipt.collection}) and its {receipt.deleted_faces} "
        f"faces at {receipt.deleted_at.isoformat()}"
    )
    return OK
