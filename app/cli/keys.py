"""`facerec keys`: API keys (stored hashed; secrets are shown once), here or through the API (admin scope)."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer

from app.cli.backend import ask
from app.cli.common import OK, JsonFlag, KeyOption, UrlOption, command, print_json, run
from app.scopes import Scope

app = typer.Typer(
    help="API keys (stored hashed; secrets are shown once); here or with --url (admin scope).", no_args_is_help=True
)

KeyId = Annotated[uuid.UUID, typer.Argument(help="the key's id")]


@app.command()
@command
def create(
    name: Annotated[str, typer.Option(help="what the key is for")],
    scope: Annotated[list[Scope], typer.Option(help="a scope the key holds (repeatable)")],
    collection: Annotated[list[str] | None, typer.Option(help="limit the key to this collection (repeatable)")] = None,
    url: UrlOption = None,
    key: KeyOption = None,
    as_json: JsonFlag = False,
) -> int:
    """Create a key and print its secret once."""
    collections = collection or None
    issued = run(
        ask(
            lambda backend: backend.create_key(name=name, scopes=scope, collections=collections),
            url=url,
            key=key,
            model=False,
        )
    )
    if as_json:
        print_json(issued.model_dump(mode="json"))
        return OK
    print(f"created key {issued.id} ({issued.prefix}) scopes={','.join(issued.scopes)}")
    print(f"secret (shown once): {issued.key}")
    return OK


@app.command("list")
@command
def list_keys(url: UrlOption = None, key: KeyOption = None, as_json: JsonFlag = False) -> int:
    """List keys (never their secrets)."""
    listed = run(ask(lambda backend: backend.keys(), url=url, key=key, model=False))
    if as_json:
        print_json(listed.model_dump(mode="json"))
        return OK
    for record in listed.items:
        state = "revoked" if record.revoked_at else "active"
        where = ",".join(record.collections) if record.collections else "*"
        print(
            f"{record.id}  {record.prefix}  {state:7}  scopes={','.join(record.scopes)}  "
            f"collections={where}  name={record.name!r}  last_used={record.last_used_at}"
        )
    return OK


@app.command()
@command
def revoke(key_id: KeyId, url: UrlOption = None, key: KeyOption = None, as_json: JsonFlag = False) -> int:
    """Revoke a key now."""
    record = run(ask(lambda backend: backend.revoke_key(key_id), url=url, key=key, model=False))
    if as_json:
        print_json(record.model_dump(mode="json"))
        return OK
    print(f"revoked key {record.id} ({record.prefix})")
    return OK


@app.command()
@command
def rotate(key_id: KeyId, url: UrlOption = None, key: KeyOption = None, as_json: JsonFlag = False) -> int:
    """Replace a key with a new secret; the old one stops working at once."""
    issued = run(ask(lambda backend: backend.rotate_key(key_id), url=url, key=key, model=False))
    if as_json:
        print_json(issued.model_dump(mode="json"))
        return OK
    print(f"key {key_id} revoked; new key {issued.id} ({issued.prefix})")
    print(f"secret (shown once): {issued.key}")
    return OK
