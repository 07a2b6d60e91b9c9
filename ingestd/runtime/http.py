"""A small threaded HTTP server for WSGI applications (the metrics port, the console).

The standard library's `wsgiref` is enough for a few read-mostly pages and probes on one
port: each request gets a daemon thread, and nothing is logged per request (a scrape every
few seconds is not worth a line).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

StartResponse = Callable[..., Any]
App = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class Pages(Protocol):
    """A WSGI application with a life of its own (the console reads the ledger in a thread)."""

    def __call__(
        self, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(app: App, host: str, port: int, name: str) -> WSGIServer:
    """Serve `app` on host:port in a daemon thread named `name`; OSError if it cannot listen.
    The server (`.shutdown()` ends it)."""
    server = make_server(host, port, app, _Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    return server


def text(start_response: StartResponse, status: str, line: str,
         headers: Iterable[tuple[str, str]] = ()) -> list[bytes]:  # fmt: skip
    """A one-line plain-text answer."""
    body = (line + "\n").encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                            ("Content-Length", str(len(body))), *headers])  # fmt: skip
    return [body]
