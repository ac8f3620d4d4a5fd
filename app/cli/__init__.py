"""The `facerec` command, on typer: one module per command group."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from app import __version__
from app.cli import db, evaluate, gallery, keys, models, recognize, serve, subjects
from app.cli.common import DEFAULT_DB_WAIT_S, USAGE, CliOptions, use_options
from app.cli.enroll import enroll_dir

HELP = (
    "Face-recognition REST microservice.\n\n"
    "Exit codes, the same for every command: 0 all succeeded, 1 some items (or the one asked for) were refused, "
    "2 usage or configuration error (a bad API key included), 3 the service or its database could not be reached. "
    "--json prints one JSON document on stdout; logs and progress go to stderr.\n\n"
    "identify, verify, detect, enroll-dir, subjects and keys work on this machine's database, or with --url URL "
    "--key KEY (FACEREC_URL, FACEREC_KEY) through a running service's API; serve, db, models, eval, calibrate and "
    "purge are local only."
)

app = typer.Typer(
    name="facerec",
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.add_typer(db.app, name="db")
app.add_typer(models.app, name="models")
app.command("enroll-dir")(enroll_dir)
app.add_typer(keys.app, name="keys")
app.add_typer(subjects.app, name="subjects")
app.command("purge")(gallery.purge)
app.command("identify")(recognize.identify)
app.command("verify")(recognize.verify)
app.command("detect")(recognize.detect)
app.command("eval")(evaluate.eval_command)
app.command("calibrate")(evaluate.calibrate_command)


def version(value: bool) -> None:
    if value:
        print(f"facerec {__version__}")
        raise typer.Exit


@app.callback(help=HELP)
def root(
    show_version: Annotated[
        bool, typer.Option("--version", callback=version, is_eager=True, help="print the version")
    ] = False,
    db_wait: Annotated[
        float,
        typer.Option(
            "--db-wait",
            envvar="FACEREC_DB_WAIT_S",
            min=0.1,
            help="seconds a local command waits for its database (reachable and migrated) before exiting 3",
        ),
    ] = DEFAULT_DB_WAIT_S,
) -> None:
    use_options(CliOptions(db_wait_s=db_wait))


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (0 ok, 1 some refused, 2 usage or configuration, 3 unavailable)."""
    try:
        result = app(args=list(argv) if argv is not None else None, prog_name="facerec", standalone_mode=False)
    except typer.TyperException as error:  # typer's own click: a usage error, a bad parameter, no arguments
        show = getattr(error, "show", None)
        if callable(show):
            show()
        else:
            print(f"Error: {error.format_message()}", file=sys.stderr)
        return error.exit_code or USAGE
    except typer.Abort:
        return USAGE
    return result if isinstance(result, int) else 0
