"""The console as a WSGI application: its routes, its headers, and who may act.

GET `/` (the board), `/files/NAME` (`ingestd explain`), `/timeline.svg`, `/static/…`, and on
`ingestd console` also `/metrics`, `/healthz`, `/readyz` (a worker's port answers those
itself); POST `/actions/retry|pause|resume` only with actions on and a token. Anything else
is 404, another method 405. Every answer carries the security headers below.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ingestd.commands.explain import explain, facts_of
from ingestd.console import pages
from ingestd.console.actions import ACTIONS, Token, act, same_origin, who
from ingestd.console.view import Scope, Watch
from ingestd.runtime.health import Verdict, live, ready
from ingestd.runtime.http import StartResponse
from ingestd.runtime.logs import Log

SECURITY = [
    (
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; "
        "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'",
    ),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Cache-Control", "no-store"),
]
STATIC = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
MAX_FORM = 65536  # bytes of a POST body: a form of file names, never more
HTML = "text/html; charset=utf-8"


@dataclass(frozen=True)
class Answer:
    status: str
    body: bytes
    kind: str = HTML


def answer(status: str, line: str) -> Answer:
    return Answer(status, (line + "\n").encode(), "text/plain; charset=utf-8")


@dataclass
class Console:
    """The pages of one fleet; `tokens` None: read-only. `probes`: serve `/metrics`,
    `/healthz` and `/readyz` here (the console command; a worker's port has its own)."""

    watch: Watch
    log: Log
    tokens: list[Token] | None = None
    probes: bool = True
    writable: Callable[[], Exception | None] = lambda: None  # the ledger's state, for /readyz

    @property
    def scope(self) -> Scope:
        return self.watch.scope

    def start(self) -> None:
        self.watch.start()

    def stop(self) -> None:
        self.watch.stop()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        try:
            result = self.route(environ)
        except Exception as exc:  # one request's failure (a ledger down) is its own answer
            self.log.warning("console_request_failed", path=environ.get("PATH_INFO", ""),
                             error=f"{type(exc).__name__}: {exc}")  # fmt: skip
            result = answer("503 Service Unavailable", f"cannot answer now: {exc}")
        headers = [("Content-Type", result.kind), ("Content-Length", str(len(result.body))),
                   *SECURITY]  # fmt: skip
        start_response(result.status, headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [result.body]

    def route(self, environ: dict[str, Any]) -> Answer:
        # WSGI hands the path over as latin-1 text: a UTF-8 name is decoded back here.
        path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", "replace")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/actions/"):
            if method != "POST":
                return answer("405 Method Not Allowed", "actions are POST only")
            return self.action(path.removeprefix("/actions/"), environ)
        if method not in ("GET", "HEAD"):
            return answer("405 Method Not Allowed", f"{method} {path}: GET only")
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        return self.get(path, query)

    def get(self, path: str, query: dict[str, list[str]]) -> Answer:
        if path == "/":
            return self.board()
        if path.startswith("/files/") and len(path) > len("/files/"):
            return self.file(path.removeprefix("/files/"))
        if path == "/timeline.svg":
            board = self.watch.board
            if board is None or board.timeline is None:
                return answer("404 Not Found", "no timeline yet")
            return Answer("200 OK", board.timeline, "image/svg+xml")
        if path.startswith("/static/") and (name := path.removeprefix("/static/")) in STATIC:
            return Answer("200 OK", resources.files(__package__).joinpath("static", name)
                          .read_bytes(), STATIC[name])  # fmt: skip
        if self.probes and path in ("/healthz", "/readyz"):
            worker = query["worker"][0] if query.get("worker") else None
            verdict = self.verdict(path == "/readyz", worker)
            status = "200 OK" if verdict.healthy else "503 Service Unavailable"
            return answer(status, verdict.line)
        if self.probes and path == "/metrics":
            board = self.watch.board
            if board is None or board.metrics is None:
                why = "the metrics need: pip install 'ingestd[metrics]'" if board else "starting"
                return answer("503 Service Unavailable", why)
            return Answer("200 OK", board.metrics, "text/plain; version=0.0.4; charset=utf-8")
        return answer("404 Not Found", f"not found: {path}")

    def aside(self, file: str | None = None) -> str:
        return pages.actions_form(file) if self.tokens is not None else ""

    def board(self) -> Answer:
        board = self.watch.board
        if board is None:
            body = pages.message_page("starting", "reading the ledger for the first time; this "
                                      "page refreshes itself", self.scope.label)  # fmt: skip
            return Answer("503 Service Unavailable", body.encode())
        html = pages.board_page(board, self.scope.label, self.watch.refresh, self.aside())
        return Answer("200 OK", html.encode())

    def file(self, name: str) -> Answer:
        facts = facts_of(self.scope.source, self.scope.inspector, name, self.scope.exact_mtimes)
        explained = explain(facts)
        unknown = explained.state in ("unknown", "ignored")
        html = pages.file_page(explained.to_dict(), self.scope.label, self.watch.refresh,
                               "" if unknown else self.aside(name))  # fmt: skip
        return Answer("404 Not Found" if unknown else "200 OK", html.encode())

    def verdict(self, readiness: bool, worker: str | None) -> Verdict:
        """`ingestd health [--ready] [--worker ID]`, judged where the console runs."""
        inspector = self.scope.inspector
        try:
            verdict = live(inspector.workers(), worker)
            if verdict.healthy and readiness:
                verdict = ready(self.scope.source, inspector, self.writable())
        except OSError as exc:
            verdict = Verdict(False, f"ledger unreachable: {exc}")
        return verdict

    def action(self, action: str, environ: dict[str, Any]) -> Answer:
        if action not in ACTIONS:
            return answer("404 Not Found", f"no action {action!r} (retry, pause, resume)")
        if self.tokens is None:
            return answer("403 Forbidden", "actions are off (ingestd console --console-actions)")
        if not same_origin(environ.get("HTTP_ORIGIN"), environ.get("HTTP_HOST")):
            self.log.warning("console_action_refused", action=action, reason="cross-site",
                             origin=environ.get("HTTP_ORIGIN"))  # fmt: skip
            return answer("403 Forbidden", "refused: the request comes from another site")
        form = read_form(environ)
        bearer = environ.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        name = who(self.tokens, (form.get("token") or [bearer])[0])
        if name is None:
            self.log.warning("console_action_refused", action=action, reason="no valid token")
            return answer("403 Forbidden", "refused: no valid token")
        files = [n for field in form.get("file", []) for n in field.split()]
        if action == "retry" and not files:
            return answer("400 Bad Request", "retry: give the file names (field 'file')")
        result = act(action, files, name, self.scope.source, self.scope.inspector)
        self.log.info("console_action", who=name, action=action, files=files, result=result)
        back = f"/files/{urllib.parse.quote(files[0], safe='')}" if len(files) == 1 else "/"
        html = pages.message_page(action, result, self.scope.label, back)
        return Answer("200 OK", html.encode())


def read_form(environ: dict[str, Any]) -> dict[str, list[str]]:
    try:
        length = min(int(environ.get("CONTENT_LENGTH") or 0), MAX_FORM)
    except ValueError:
        length = 0
    body = environ["wsgi.input"].read(length) if length > 0 else b""
    return urllib.parse.parse_qs(body.decode("utf-8", "replace"))
