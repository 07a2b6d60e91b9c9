"""`ingestd compact`: rewrite a state dir's manifest to one record per file, safe while
workers run (a command of the file ledger; other ledgers say why it does not apply)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ingestd import ledgers, sources
from ingestd.commands import reading, target
from ingestd.commands.arguments import Command, add_dir, days
from ingestd.contracts.naming import key_of, sort_key
from ingestd.contracts.source import Source


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("--archive", action="store_true",
                        help="keep the old manifest as manifest-DATE.jsonl")  # fmt: skip
    parser.add_argument("--retain", type=days, metavar="DAYS",
                        help="drop records of files gone and older than DAYS, unless "
                             "publishing still needs them")  # fmt: skip
    parser.add_argument("--output-dir", type=Path, metavar="PATH",
                        help="the workers' --output-dir with --publish-in-order "
                             "(default DIR/out)")  # fmt: skip


def cmd_compact(args: argparse.Namespace) -> int:
    if (why := ledgers.kind(args.ledger).refuses("compact")) is not None:
        print(f"ingestd: error: {why}: nothing to compact", file=sys.stderr)
        return 2
    from ingestd.ledgers.file.compact import compact

    state = target.state_dir(args)
    assert state is not None  # target.problem insists on one
    if not (state / "manifest.jsonl").exists():
        print(f"nothing to compact: no manifest in {state}")
        return 0
    source, _ = target.view(args)
    try:
        result = compact(state, lambda: _still_needed(source, args), args.archive, args.retain)
    except FileExistsError as exc:
        print(f"ingestd: error: compact: {exc}", file=sys.stderr)
        return 2
    print(
        f"manifest: {result.records_before} records -> {result.records_after} "
        f"({result.bytes_before} -> {result.bytes_after} bytes); bad lines dropped "
        f"{result.bad_lines}; expired {result.expired}"
        + (f"; old manifest kept as {result.archive}" if result.archive else "")
    )
    return 0


class _Needed:
    """Names whose records a compaction must keep: still in the source (a scan needs them),
    staged for publishing, or after their key's watermark (a publishing pass needs them)."""

    def __init__(self, present: set[str], staged: set[str], marks: dict[str, str] | None):
        self.present, self.staged, self.marks = present, staged, marks

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name in self.present or name in self.staged:
            return True
        if self.marks is None:
            return True  # the watermark cannot be read: expire nothing
        mark = self.marks.get(key_of(name))
        return mark is None or bool(sort_key(name) > sort_key(mark))


def _still_needed(source: Source, args: argparse.Namespace) -> _Needed:
    from ingestd.core.publishing.publisher import STAGING
    from ingestd.ledgers.file.marks import read_marks

    present = reading.present_names(source)
    out = args.output_dir or sources.kind(args.dir).default_output_dir(args.dir)
    if out is None or not (out / STAGING).is_dir():
        return _Needed(present, set(), {})  # no publishing here
    staged = {entry.name for entry in os.scandir(out / STAGING) if entry.is_dir()}
    try:
        marks: dict[str, str] | None = read_marks(out).published
    except (OSError, ValueError):
        marks = None
    return _Needed(present, staged, marks)


COMMAND = Command(
    "compact", "rewrite the manifest to one record per file (safe while workers run)",
    arguments, cmd_compact,
)  # fmt: skip
