"""Pure: `ingestd explain DIR NAME`, everything known about one file and why it is where it is.

The caller gathers the facts (is it in the source, its records in commit order, its claim, the
pause flag, its digest when it matters); `explain` puts them in order and says, in one line,
what state the file is in and what, if anything, the operator can do about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .ledger import DONE, FAILED, REDO, RETRY, Owner
from .naming import is_data_name


@dataclass(frozen=True)
class Facts:
    name: str
    present: tuple[int, int | None] | None  # (size, mtime_ns if known) in the source, or None
    records: list[dict[str, Any]]  # this file's, in commit order
    held: bool
    owner: Owner | None  # of the current or last unfinished attempt
    paused: bool = False
    sha256: str | None = None  # of the file as it is now, when it was done and is present


@dataclass
class Explanation:
    file: str
    lines: list[tuple[str, str]] = field(default_factory=list)  # (what, detail), oldest first
    state: str = "unknown"
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "state": self.state, "why": self.why,
                "history": [{"what": w, "detail": d} for w, d in self.lines]}  # fmt: skip


def _mtime(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds")


def _record_line(record: dict[str, Any]) -> tuple[str, str]:
    status = record.get("status")
    if status == RETRY:
        return "retry", f"requested by {record.get('worker')} at {record.get('requested_at')}"
    if status == REDO:
        return "redo", (
            f"requested by {record.get('worker')} at {record.get('requested_at')}: the content "
            f"processed before (sha256 {record.get('previous_sha256')}) had changed"
        )
    parts = [
        f"{status} by {record.get('worker')} (host {record.get('host')}, pid {record.get('pid')})",
        f"attempt {record.get('attempt')}",
        f"seen {record.get('seen_at')}",
        f"started {record.get('started_at')}",
        f"finished {record.get('finished_at')}",
    ]
    if record.get("minutes") is not None:
        parts.append(f"{record['minutes']} min")
    if record.get("records") is not None:
        parts.append(f"{record['records']} rows")
    if record.get("outputs"):
        parts.append("outputs " + ", ".join(map(str, record["outputs"])))
    if record.get("error"):
        parts.append(f"error: {record['error']}")
    return "record", "; ".join(parts)


def _owner_line(held: bool, owner: Owner) -> tuple[str, str]:
    who = f"{owner.worker} (host {owner.host}, pid {owner.pid})"
    if held:
        return "claim", f"held by {who}, attempt {owner.attempt}, since {owner.claimed_at}"
    ended = f"ended: {owner.error}" if owner.error else "its worker died before a record"
    return "claim", f"attempt {owner.attempt} by {who} from {owner.claimed_at} {ended}"


def explain(facts: Facts) -> Explanation:
    out = Explanation(facts.name)
    if facts.present is not None:
        size, mtime = facts.present
        modified = f", modified {_mtime(mtime)}" if mtime is not None else ""
        out.lines.append(("source", f"present: {size} bytes{modified}"))
    else:
        out.lines.append(("source", "not present"))
    out.lines.extend(_record_line(r) for r in facts.records)
    if facts.owner is not None:
        out.lines.append(_owner_line(facts.held, facts.owner))
    elif facts.held:
        out.lines.append(("claim", "held (no owner record yet: the attempt is starting)"))
    out.state, out.why = _verdict(facts)
    return out


def _standing(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The record that decides the file's state: the first done, else the last record (of
    those after the last `redo`, when an operator reopened the file)."""
    redone = [i for i, r in enumerate(records) if r.get("status") == REDO]
    if redone:
        records = records[redone[-1] :]
    done = [r for r in records if r.get("status") == DONE]
    if done:
        return done[0]
    return records[-1] if records else None


def _verdict(facts: Facts) -> tuple[str, str]:
    name, standing = facts.name, _standing(facts.records)
    if not is_data_name(name):
        return "ignored", "not a data-file name (YYYY_MM_DD_HH_MM.txt): never processed"
    status = standing.get("status") if standing else None
    if status == DONE and standing is not None:
        said = f"done by {standing.get('worker')} at {standing.get('finished_at')}"
        since = facts.records[facts.records.index(standing) :]
        if len([r for r in since if r.get("status") == DONE]) > 1:
            return "done", said + "; more than one done record (ingestd verify reports it)"
        if facts.present is None:
            return "done", said + "; the source file is gone since (moved or deleted)"
        if facts.sha256 is not None and standing.get("sha256") not in (None, facts.sha256):
            return "done", (
                f"{said}; the file changed after it was done: the content processed had "
                f"sha256 {standing.get('sha256')}, the source holds {facts.sha256} now (kept, "
                f"not processed again; 'ingestd retry DIR {name}' processes the new content)"
            )
        return "done", said
    if status == FAILED and standing is not None:
        return "failed", (
            f"failed on attempt {standing.get('attempt')}: {standing.get('error')}; "
            f"'ingestd retry DIR {name}' processes it again"
        )
    if facts.held:
        who = facts.owner.worker if facts.owner else "a worker"
        return "in progress", f"being processed by {who}"
    if facts.present is None:
        if facts.records:
            return "gone", "retried, but the file is no longer in the source"
        return "unknown", "not in the source and never recorded"
    waiting = "waiting" + (" (the fleet is paused: ingestd resume DIR)" if facts.paused else "")
    if facts.owner is not None and facts.owner.attempt:
        ended = facts.owner.error or "its worker died"
        return waiting, (
            f"attempt {facts.owner.attempt} ended ({ended}); the next free worker tries again"
        )
    if status == RETRY:
        return waiting, "retry requested; the next free worker takes it"
    if status == REDO:
        return waiting, "its new content is to be processed (ingestd retry); the next free "\
            "worker takes it"  # fmt: skip
    return waiting, "present and unclaimed; the next free worker takes it, oldest first"
