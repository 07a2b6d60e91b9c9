"""Pure: `ingestd explain DIR NAME`, everything known about one file and why it is where it is.

The caller gathers the facts (is it in the source, its records in commit order, its claim, the
pause flag, its digest when it matters); `explain` puts them in order and says, in one line,
what state the file is in and what, if anything, the operator can do about it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ingestd import sources
from ingestd.commands import target
from ingestd.commands.arguments import Command, add_dir
from ingestd.contracts.ledger import DONE, FAILED, REDO, RETRY, Inspector, Owner, Stored
from ingestd.contracts.naming import is_data_name, terminal_safe
from ingestd.contracts.source import Source


@dataclass(frozen=True)
class Facts:
    name: str
    present: tuple[int, int | None] | None  # (size, mtime_ns if known) in the source, or None
    records: list[Stored]  # this file's, in commit order
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


def _record_line(record: Stored) -> tuple[str, str]:
    status = record.status
    if status == RETRY:
        return "retry", f"requested by {record.worker} at {record.requested_at}"
    if status == REDO:
        return "redo", (
            f"requested by {record.worker} at {record.requested_at}: the content "
            f"processed before (sha256 {record.previous_sha256}) had changed"
        )
    parts = [
        f"{status} by {record.worker} (host {record.host}, pid {record.pid})",
        f"attempt {record.attempt}",
        f"seen {record.seen_at}",
        f"started {record.started_at}",
        f"finished {record.finished_at}",
    ]
    if record.minutes is not None:
        parts.append(f"{record.minutes} min")
    if record.records is not None:
        parts.append(f"{record.records} rows")
    if record.outputs:
        parts.append("outputs " + ", ".join(record.outputs))
    if record.error:
        parts.append(f"error: {record.error}")
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


def standing_record(records: list[Stored]) -> Stored | None:
    """The record that decides the file's state: the first done, else the last record (of
    those after the last `redo`, when an operator reopened the file)."""
    redone = [i for i, r in enumerate(records) if r.status == REDO]
    if redone:
        records = records[redone[-1] :]
    done = [r for r in records if r.status == DONE]
    if done:
        return done[0]
    return records[-1] if records else None


def _verdict(facts: Facts) -> tuple[str, str]:
    name, standing = facts.name, standing_record(facts.records)
    if not is_data_name(name):
        return "ignored", "not a data-file name (YYYY_MM_DD_HH_MM.txt): never processed"
    status = standing.status if standing else None
    if status == DONE and standing is not None:
        said = f"done by {standing.worker} at {standing.finished_at}"
        since = facts.records[facts.records.index(standing) :]
        if len([r for r in since if r.status == DONE]) > 1:
            return "done", said + "; more than one done record (ingestd verify reports it)"
        if facts.present is None:
            return "done", said + "; the source file is gone since (moved or deleted)"
        if facts.sha256 is not None and standing.sha256 not in (None, facts.sha256):
            return "done", (
                f"{said}; the file changed after it was done: the content processed had "
                f"sha256 {standing.sha256}, the source holds {facts.sha256} now (kept, "
                f"not processed again; 'ingestd retry DIR {name}' processes the new content)"
            )
        return "done", said
    if status == FAILED and standing is not None:
        return "failed", (
            f"failed on attempt {standing.attempt}: {standing.error}; "
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


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("name", metavar="NAME", help="the file's name, e.g. 2018_06_28_00_00.txt")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_explain(args: argparse.Namespace) -> int:
    name = os.path.basename(args.name)
    if name != args.name and not _in_source(args):
        print(f"ingestd: error: {args.name} is not in {args.dir}: give the file's name "
              f"(e.g. {name})", file=sys.stderr)  # fmt: skip
        return 2
    source, inspector = target.view(args)
    facts = facts_of(source, inspector, name, sources.kind(args.dir).exact_mtimes)
    result = explain(facts)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(terminal_safe(f"{result.file}: {result.state}: {result.why}"))
        for what, detail in result.lines:
            print(f"  {what:<8} {terminal_safe(detail)}")
    return 0 if result.state not in ("unknown", "ignored") else 1


def facts_of(source: Source, inspector: Inspector, name: str, exact_mtimes: bool) -> Facts:
    """What is known of `name`: in the source (`exact_mtimes`: the source's modification
    times are real ones, not a bucket's version tags), in the ledger, and its claim."""
    records = inspector.history(name)
    present: tuple[int, int | None] | None = None
    sha256 = None
    signature = source.signature(name) if is_data_name(name) else None
    if signature is not None:
        present = (signature[0], signature[1] if exact_mtimes else None)
        if any(r.status == DONE for r in records):
            with contextlib.suppress(OSError):
                sha256 = source.digest(name)[1]
    held, owner = inspector.claim(name)
    return Facts(name, present, records, held, owner, inspector.paused(), sha256)


def _in_source(args: argparse.Namespace) -> bool:
    """Whether `args.name`, a path, names a file in DIR itself (so its base name is meant)."""
    return sources.kind(args.dir).holds_path(args.dir, str(args.name))


COMMAND = Command("explain", "everything known about one file, and why", arguments, cmd_explain)
