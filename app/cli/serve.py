"""`facerec serve`: the HTTP service."""

from __future__ import annotations

import logging.config
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
    from app.logs import log_config
    from app.main import create_app

    config = settings()
    # The options win over FACEREC_HOST and FACEREC_LOG_LEVEL for the app too (the metrics port binds to its host).
    config = config.model_copy(update={"host": host or config.host, "log_level": log_level or config.log_level})
    # One format for our lines and uvicorn's (FACEREC_LOG_FORMAT), each with the request id when in a request.
    logging_config = log_config(log_format=config.log_format, level=config.log_level)
    logging.config.dictConfig(logging_config)
    # Check the weights before binding the port, so a missing file is one clear paragraph.
    resolve_weights(weights_source(config), allow_download=config.allow_download)
    uvicorn.run(
        create_app(config),
        host=config.host,
        port=port if port is not None else config.port,
        log_level=config.log_level.lower(),
        log_config=logging_config,
        access_log=False,  # the app logs each request itself, with its route, duration and request id
        timeout_graceful_shutdown=10,
    )
    return OK
