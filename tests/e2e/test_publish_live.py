"""--publish-in-order with three real workers under SIGKILLs, watched by inotify: every output
once, in name order per key."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from builders import n
from conftest import manifest_records, wait_for
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers.inotify import InotifyObserver

from ingestd.contracts.ledger import DONE
from ingestd.contracts.naming import key_of
from ingestd.core.publishing.publisher import STAGING
from ingestd.ledgers.file.marks import WATERMARK, read_marks

HANDLER = """
import time
from ingestd.contracts.errors import BadInput

def handle(job):
    text = job.open().read().decode()
    if text.startswith("bad"):
        raise BadInput("a poison file")
    time.sleep(float(text))
    target = job.outputs_dir() / job.name.replace(".txt", ".out")
    temp = target.with_name("." + target.name + ".tmp")
    temp.write_text(text)
    temp.replace(target)
    return 1.0
"""


def status(data: Path) -> dict[str, Any]:
    return dict(json.loads(status_text(data, "--json")))


def status_text(data: Path, *args: str) -> str:
    command = [sys.executable, "-m", "ingestd", "status", str(data), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60).stdout


class OutputWatch(FileSystemEventHandler):
    """What a downstream reader sees: outputs appearing, and the watermark at each change
    with the directory listed right after reading it."""

    def __init__(self, out: Path, suffix: str) -> None:
        self.out, self.suffix = out, suffix
        self.appeared: list[str] = []
        self.watermarks: list[tuple[dict[str, str], set[str]]] = []
        self.mutex = threading.Lock()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("created", "moved") or event.is_directory:
            return
        path = Path(str(getattr(event, "dest_path", "") or event.src_path))
        if path.parent != self.out:
            return
        with self.mutex:
            if path.suffix == self.suffix:
                self.appeared.append(path.name)
            elif path.name == WATERMARK:
                published = json.loads(path.read_text())["keys"]
                listing = set(os.listdir(self.out))  # read after the watermark
                marks = {k: v["published"] for k, v in published.items()}
                self.watermarks.append((marks, listing))


def content(handler: str, rng: random.Random) -> str:
    """A file that takes a random time: seconds to sleep, or up to ~25,000 JSON objects."""
    if handler != "tsv":
        return f"{rng.uniform(0.05, 0.6):.3f}"
    return "".join(f'{{"i": {i}, "s": "\\t{i}"}}\n' for i in range(rng.randint(1, 25_000)))


@pytest.mark.parametrize("handler", ["tsv", "slowout:handle"])
def test_three_workers_publish_each_keys_outputs_in_name_order_through_kills(
    data: Path, spawn, tmp_path: Path, handler: str
) -> None:
    rng = random.Random(20261129)
    (tmp_path / "slowout.py").write_text(HANDLER)
    suffix = ".tsv" if handler == "tsv" else ".out"
    out = tmp_path / "out"
    out.mkdir()
    watch = OutputWatch(out, suffix)
    observer = InotifyObserver()
    observer.schedule(watch, str(out), recursive=False)
    observer.start()
    names = [n(key, 15 * i) for i in range(8) for key in "abc"]
    poison = n("b", 45)
    args = ("--handler", handler, "--output-dir", str(out), "--publish-in-order",
            "--heartbeat-interval", "0.3", "--max-attempts", "10")  # fmt: skip
    try:
        workers = [spawn(data, *args, name=f"w{i}") for i in range(3)]
        for name in names:  # arriving in time order, a few at a time
            text = "bad\n" if name == poison else content(handler, rng)
            (data / name).write_text(text)
            time.sleep(rng.uniform(0, 0.05))
        for kill in range(3):  # SIGKILL one while it works (or publishes), start another
            victim = workers[kill]
            wait_for(lambda v=victim: v.events("file_claimed"), what="at work")
            time.sleep(rng.uniform(0.05, 0.3))
            victim.kill()
            workers.append(spawn(data, *args, name=f"w{kill}-again"))
        wait_for(lambda: len({r["file"] for r in manifest_records(data)}) == len(names),
                 timeout=120, what="every file recorded")  # fmt: skip
        wait_for(
            lambda: (
                read_marks(out).published.get("c") == n("c", 105)
                and read_marks(out).published.get("a") == n("a", 105)
                and read_marks(out).published.get("b") == n("b", 105)
            ),
            timeout=30,
            what="everything published",
        )
        last = {key: n(key, 105) for key in "abc"}
        wait_for(lambda: status(data)["published"] == last, what="status saying so")
        assert f"published      key a: up to {last['a']}" in status_text(data)
        for w in workers[3:]:
            assert w.terminate() == 0
    finally:
        time.sleep(1)  # the observer pairs moves for up to half a second
        observer.stop()
        observer.join()
    records = manifest_records(data)
    done = {r["file"] for r in records if r["status"] == DONE}
    assert done == set(names) - {poison}
    expected = sorted(name.replace(".txt", suffix) for name in done)
    assert sorted(os.listdir(out)) == sorted([STAGING, WATERMARK, *expected])
    assert os.listdir(out / STAGING) == [".lock"]
    assert read_marks(out).skipped == {"b": [poison]}
    # Per key, each output appeared once, in name order.
    assert sorted(watch.appeared) == expected
    for key in "abc":
        seen = [name for name in watch.appeared if key_of(name.replace(suffix, ".txt")) == key]
        assert seen == sorted(seen), f"key {key} out of order: {seen}"
    # The watermark never went back, and everything up to it was there when it was read.
    assert watch.watermarks
    newest: dict[str, str] = {}
    for marks, listing in watch.watermarks:
        for key, mark in marks.items():
            assert mark >= newest.get(key, ""), f"key {key}: watermark went back to {mark}"
            newest[key] = mark
            behind = [x for x in done if key_of(x) == key and x <= mark]
            missing = [x for x in behind if x.replace(".txt", suffix) not in listing]
            assert not missing, f"watermark {mark} passed unpublished {missing}"
