"""The `facerec` command, on typer: one module per command group."""

from __future__ import annotations

from collections.abc import Sequence

import click
import typer

from app import __version__
from app.cli import db, evaluate, gallery, keys, models, recognize, serve
from app.cli.common import USAGE
from app.cli.enroll import enroll_dir

app = typer.Typer(
    name="facerec",
    help="Face-recognition REST microservice.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("serve")(serve.serve)
app.add_typer(db.app, name="db")
app.add_typer(models.app, name="models")
app.command("enroll-dir")(enroll_dir)
app.add_typer(keys.app, name="keys")
app.command("purge")(gallery.purge)
app.command("identify")(recognize.identify)
app.command("eval")(evaluate.eval_command)
app.command("calibrate")(evaluate.calibrate_command)


def version(value: bool) -> None:
    if value:
        print(f"facerec {__version__}")
        raise typer.Exit


@app.callback()
def root(
    show_version: bool = typer.Option(False, "--version", callback=version, is_eager=True, help="print the version"),
) -> None:
    """Face-recognition REST microservice."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit code (0 ok, 1 some refused, 2 usage or configuration, 3 unavailable)."""
    try:
        result = app(args=list(argv) if argv is not None else None, prog_name="facerec", standalone_mode=False)
    except click.exceptions.Exit as done:
        return done.exit_code
    except click.ClickException as error:
        error.show()
        return error.exit_code if error.exit_code else USAGE
    except click.exceptions.Abort:
        return USAGE
    return result if isinstance(result, int) else 0
