"""`ingestd explain`: the verdicts, from facts (pure)."""

from __future__ import annotations

from typing import Any

from ingestd.commands.explain import Facts, explain
from ingestd.contracts.ledger import Owner, Stored

NAME = "2018_06_28_00_00.txt"

OWNER = Owner("a", "h", 7, "2026-01-01T00:00:00+00:00", attempt=1)


def facts(**changes: Any) -> Facts:
    base: dict[str, Any] = dict(name=NAME, present=(3, 10**18), records=[], held=False,
                                owner=None)  # fmt: skip
    changes["records"] = [Stored.from_dict(r) for r in changes.get("records", [])]
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
