"""The console's routes, headers and actions, in process, on the in-memory ledger and source."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
import structlog

from ingestd.console.actions import Token
from ingestd.console.app import Console
from ingestd.console.view import Scope, Watch
from ingestd.ledgers.memory import MemoryInspector, MemoryStore
from ingestd.sources.memory import MemorySource

SECRET = "s3cret-token-0123456789"
FAILED = "2018_06_28_00_15.txt"


def failed_record(name: str) -> dict[str, Any]:
    return {"file": name, "status": "failed", "worker": "w1", "attempt": 3,
            "error": "bad input: <b>", "finished_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore()
    store.records.append({"file": "2018_06_28_00_00.txt", "status": "done", "worker": "w1",
                          "attempt": 1, "sha256": hashlib.sha256(b"1\n").hexdigest()})  # fmt: skip
    store.records.append(failed_record(FAILED))
    return store


def console(store: MemoryStore, tokens: list[Token] | None = None) -> Console:
    source = MemorySource({"2018_06_28_00_00.txt": b"1\n", FAILED: b"x\n"})
    scope = Scope(source, MemoryInspector(store), "memory")
    made = Console(Watch(scope, structlog.get_logger()), structlog.get_logger(), tokens)
    made.watch.read()
    return made


def call(
    app: Console, method: str, path: str, body: str = "", **headers: str
) -> tuple[str, dict[str, str], str]:
    raw = body.encode()
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "",
               "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw),
               "HTTP_HOST": "127.0.0.1:9465", **headers}  # fmt: skip
    answered: dict[str, Any] = {}

    def start_response(status: str, header_list: list[tuple[str, str]]) -> None:
        answered["status"], answered["headers"] = status, dict(header_list)

    out = b"".join(app(environ, start_response))
    return answered["status"], answered["headers"], out.decode()


def test_the_board_the_file_page_and_the_static_files(store: MemoryStore) -> None:
    app = console(store)
    status, headers, html = call(app, "GET", "/")
    assert status == "200 OK" and 'id="count-done">1<' in html and 'id="count-failed">1<' in html
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    status, _, html = call(app, "GET", f"/files/{FAILED}")
    assert status == "200 OK" and 'class="state failed"' in html and "&lt;b&gt;" in html
    assert call(app, "GET", "/files/2018_06_28_09_00.txt")[0] == "404 Not Found"
    status, headers, js = call(app, "GET", "/static/console.js")
    assert status == "200 OK" and "getElementById" in js
    assert headers["Content-Type"].startswith("text/javascript")
    assert call(app, "GET", "/static/../app.py")[0] == "404 Not Found"


def test_unknown_paths_are_404_and_other_methods_405(store: MemoryStore) -> None:
    app = console(store)
    assert call(app, "GET", "/admin")[0] == "404 Not Found"
    assert call(app, "POST", "/")[0] == "405 Method Not Allowed"
    assert call(app, "GET", "/actions/pause")[0] == "405 Method Not Allowed"
    status, _, body = call(app, "HEAD", "/")
    assert status == "200 OK" and body == ""


def test_the_probes_judge_the_heartbeats_where_the_console_runs(store: MemoryStore) -> None:
    status, _, line = call(console(store), "GET", "/healthz")
    assert status == "503 Service Unavailable" and "has a heartbeat" in line


def test_a_read_only_console_refuses_every_action(store: MemoryStore) -> None:
    app = console(store)
    status, _, line = call(app, "POST", "/actions/pause", f"token={SECRET}")
    assert status == "403 Forbidden" and "actions are off" in line
    assert not store.paused


def test_actions_need_a_valid_token_from_this_site(store: MemoryStore) -> None:
    app = console(store, [Token("alice", SECRET)])
    assert call(app, "POST", "/actions/pause")[0] == "403 Forbidden"
    assert call(app, "POST", "/actions/pause", "token=wrong-token-0123456789")[0] == "403 Forbidden"
    cross = call(app, "POST", "/actions/pause", f"token={SECRET}", HTTP_ORIGIN="http://evil")
    assert cross[0] == "403 Forbidden" and not store.paused
    assert call(app, "POST", "/actions/pause", f"token={SECRET}")[0] == "200 OK"
    assert store.paused
    bearer = call(app, "POST", "/actions/resume", HTTP_AUTHORIZATION=f"Bearer {SECRET}")
    assert bearer[0] == "200 OK" and not store.paused
    assert call(app, "POST", "/actions/explode", f"token={SECRET}")[0] == "404 Not Found"


def test_a_retry_is_recorded_as_the_token_holder_asked_it(store: MemoryStore) -> None:
    app = console(store, [Token("alice", SECRET)])
    status, _, html = call(app, "POST", "/actions/retry",
                           f"token={SECRET}&file={FAILED}+2018_06_28_00_00.txt")  # fmt: skip
    assert status == "200 OK"
    assert f"{FAILED}: will be processed again" in html
    assert "2018_06_28_00_00.txt: done, and the source holds the very content" in html
    retry = store.records[-1]
    assert retry["status"] == "retry" and retry["file"] == FAILED
    assert retry["worker"].startswith("console:alice@")
    assert call(app, "POST", "/actions/retry", f"token={SECRET}")[0] == "400 Bad Request"
