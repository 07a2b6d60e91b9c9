"""Starting `ingestd console` for real and asking it things over HTTP."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Proc, stop_all, wait_for

SECRET = "s3cret-token-0123456789"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str


def fetch(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> Reply:
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, dict(response.headers), response.read().decode())
    except urllib.error.HTTPError as error:
        return Reply(error.code, dict(error.headers), error.read().decode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Console:
    proc: Proc
    url: str  # http://127.0.0.1:PORT/

    def get(self, path: str) -> Reply:
        return fetch(self.url + path.lstrip("/"))

    def post(self, path: str, form: str = "", **headers: str) -> Reply:
        return fetch(self.url + path.lstrip("/"), form.encode(), headers)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Callable[..., Console]]:
    """console(DIR, *args): `ingestd console DIR` on a free port, reading every 0.2 s."""
    started: list[Proc] = []

    def start(data: Path | str, *args: str, name: str = "console") -> Console:
        log_path = tmp_path / f"{name}.log"
        with open(log_path, "ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "ingestd", "console", str(data), "--listen",
                 "127.0.0.1:0", "--refresh", "0.2", "--log-format", "json", *args],
                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
            )  # fmt: skip
        proc = Proc(popen, log_path, name)
        started.append(proc)
        listening = wait_for(lambda: proc.events("console_listening") or popen.poll() is not None,
                             what="the console listening")  # fmt: skip
        assert isinstance(listening, list), proc.text
        made = Console(proc, listening[0]["url"])
        wait_for(lambda: made.get("/").status == 200, what="the first reading")
        return made

    yield start
    stop_all(started, "terminate")


def counts(html: str) -> dict[str, int]:
    import re

    return {k: int(v) for k, v in re.findall(r'id="count-([a-z-]+)">(\d+)<', html)}


def ledger_json(*args: str) -> Any:
    out = subprocess.run([sys.executable, "-m", "ingestd", *args, "--json"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    return json.loads(out.stdout)
