"""`facerec keys`: API keys (stored hashed; secrets are shown once)."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from app.cli.common import OK, command, run, settings
from app.composition import open_services
from app.scopes import Scope
from app.services.access import SYSTEM

app = typer.Typer(help="API keys (stored hashed; secrets are shown once).", no_args_is_help=True)


@app.command()
@command
def create(
    name: Annotated[str, typer.Option(help="what the key is for")],
    scope: Annotated[list[Scope], typer.Option(help="a scope the key holds (repeatable)")],
    collection: Annotated[list[str] | None, typer.Option(help="limit the key to this collection (repeatable)")] = None,
) -> int:
    """Create a key and print its secret once."""

    async def go() -> None:
        async with open_services(settings(), with_engine=False) as services:
            issued = await services.keys.create(
                name=name, scopes=scope, collections=collection or None, principal=SYSTEM
            )
        print(f"created key {issued.record.id} ({issued.record.prefix}) scopes={','.join(issued.record.scopes)}")
        print(f"secret (shown once): {issued.token}")

    run(go())
    return OK


@app.command("list")
@command
def list_keys() -> int:
    """List keys (never their secrets)."""

    async def go() -> None:
        async with open_services(settings(), with_engine=False) as services:
            records = await services.keys.list()
        for record in records:
            state = "revoked" if record.revoked_at else "active"
            where = ",".join(record.collections) if record.collections else "*"
            print(
                f"{record.id}  {record.prefix}  {state:7}  scopes={','.join(record.scopes)}  "
                f"collections={where}  name={record.name!r}  last_used={record.last_used_at}"
            )

    run(go())
    return OK


@app.command()
@command
def revoke(key_id: Annotated[uuid.UUID, typer.Argument(help="the key's id")]) -> int:
    """Revoke a key now."""

    async def go() -> None:
        async with open_services(settings(), with_engine=False) as services:
            record = await services.keys.revoke(key_id, principal=SYSTEM)
        print(f"revoked key {record.id} ({record.prefix})")

    run(go())
    return OK


@app.command()
@command
def rotate(key_id: Annotated[uuid.UUID, typer.Argument(help="the key's id")]) -> int:
    """Replace a key with a new secret; the old one stops working at once."""

    async def go() -> None:
        async with open_services(settings(), with_engine=False) as services:
            issued = await services.keys.rotate(key_id, principal=SYSTEM)
        print(f"key {key_id} revoked; new key {issued.record.id} ({issued.record.prefix})")
        print(f"secret (shown once): {issued.token}")

    run(go())
    return OK
