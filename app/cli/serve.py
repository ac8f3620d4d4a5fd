"""`facerec serve`: the HTTP service."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from app.cli.common import OK, command, settings


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


@command
def serve(
    host: Annotated[str | None, typer.Option(help="bind address (default FACEREC_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default FACEREC_PORT)")] = None,
    log_level: Annotated[LogLevel | None, typer.Option(help="log level (default FACEREC_LOG_LEVEL)")] = None,
) -> int:
    """Run the HTTP service (embedded Postgres unless FACEREC_DATABASE_URL)."""
    import uvicorn

    from app.composition import weights_source
    from app.engine.weights import resolve_weights
    from app.main import create_app

    config = settings()
    # Check the weights before binding the port, so a missing file is one clear paragraph.
    resolve_weights(weights_source(config), allow_download=config.allow_download)
    uvicorn.run(
        create_app(config),
        host=host or config.host,
        port=port if port is not None else config.port,
        log_level=(log_level or config.log_level).lower(),
        timeout_graceful_shutdown=10,
    )
    return OK
