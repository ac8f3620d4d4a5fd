"""Throwaway HTTP servers on 127.0.0.1 (a folder, an ASGI app in uvicorn) and a port nothing listens on."""

from __future__ import annotations

import asyncio
import functools
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn

STARTUP_TIMEOUT_S = 120.0


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve the files in directory over HTTP on a free loopback port; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def closed_port_url(path: str) -> str:
    """A URL on a loopback port that was free a moment ago, so connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/{path}"


@dataclass(frozen=True)
class ServedApp:
    base_url: str
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop  # the app's own, for running coroutines on its services


@contextmanager
def serve_app(app: Any, *, name: str) -> Iterator[ServedApp]:
    """The ASGI app in uvicorn on its own thread and event loop, on a free loopback port, once /readyz is 200."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(sockets=[listener]),), name=name)
        thread.start()
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_ready(base_url, thread=thread)
            yield ServedApp(base_url=base_url, server=server, loop=loop)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
            loop.close()


def _wait_until_ready(base_url: str, *, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        assert thread.is_alive(), "the service's thread ended during startup"
        try:
            response = httpx.get(f"{base_url}/readyz", timeout=5)
            if response.status_code == 200:
                return
            last = response.text
        except httpx.TransportError as error:
            last = repr(error)
        time.sleep(0.1)
    raise AssertionError(f"the service was not ready within {STARTUP_TIMEOUT_S} s: {last}")
