"""`ingestd explain`: the verdicts (pure) and the command against a real killed worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import done_names, wait_for

from ingestd.explain import Facts, explain
from ingestd.ledger import Owner

NAME = "2018_06_28_00_00.txt"
OWNER = Owner("a", "h", 7, "2026-01-01T00:00:00+00:00", attempt=1)


def facts(**changes: Any) -> Facts:
    base: dict[str, Any] = dict(name=NAME, present=(3, 10**18), records=[], held=False,
                                owner=None)  # fmt: skip
    return Facts(**{**base, **changes})


def done(worker: str = "b", sha: str = "abc") -> dict[str, Any]:
    return {"file": NAME, "status": "done", "worker": worker, "attempt": 2, "sha256": sha,
            "finished_at": "T", "outputs": ["out/x.tsv"]}  # fmt: skip


def test_each_state_says_why_and_what_to_do() -> None:
    poison = {"file": NAME, "status": "failed", "attempt": 3, "error": "bad input: x"}
    cases = {
        "waiting": facts(),
        "in progress": facts(held=True, owner=OWNER),
        "done": facts(records=[done()], sha256="abc"),
        "failed": facts(records=[poison]),
        "unknown": facts(present=None),
        "ignored": facts(name="notes.txt"),
    }
    for state, given in cases.items():
        assert explain(given).state == state, state
    assert "ingestd retry DIR" in explain(cases["failed"]).why
    assert "next free worker" in explain(cases["waiting"]).why
    crashed = explain(facts(owner=Owner("a", "h", 7, "t", attempt=2, error="OSError: x")))
    assert crashed.state == "waiting" and "attempt 2 ended (OSError: x)" in crashed.why
    assert "paused" in explain(facts(paused=True)).state
    changed = explain(facts(records=[done()], sha256="def"))
    assert "changed after it was done" in changed.why
    gone = explain(facts(records=[done()], present=None))
    assert gone.state == "done" and "gone" in gone.why
    twice = explain(facts(records=[done("b"), done("c")], sha256="abc"))
    assert "more than one done record" in twice.why and "by b" in twice.why
    history = [d for _, d in explain(facts(records=[done()])).lines]
    assert any("outputs out/x.tsv" in d for d in history)


def run(data: Path, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingestd", "explain", str(data), name, "--json"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip


def test_a_killed_attempt_then_the_takeover(data: Path, spawn) -> None:
    (data / NAME).write_text("30\n")
    a = spawn(data, "--seconds-in-min", "10", name="a")
    wait_for(lambda: a.events("file_claimed"), what="a at work")
    working = json.loads(run(data, NAME).stdout)
    assert working["state"] == "in progress" and "by a" in working["why"]
    a.kill()
    lost = json.loads(run(data, NAME).stdout)
    assert lost["state"] == "waiting", lost
    assert "attempt 1 ended (its worker died)" in lost["why"]
    b = spawn(data, "--seconds-in-min", "0.001", name="b")
    wait_for(lambda: done_names(data) == [NAME], what="b takes it over")
    assert b.terminate() == 0
    finished = run(data, NAME)
    assert finished.returncode == 0
    result = json.loads(finished.stdout)
    assert result["state"] == "done" and result["why"].startswith("done by b")
    assert [h["what"] for h in result["history"]] == ["source", "record"]
    assert "attempt 2" in result["history"][1]["detail"]
    unknown = run(data, "2018_06_28_00_15.txt")
    assert unknown.returncode == 1 and json.loads(unknown.stdout)["state"] == "unknown"
