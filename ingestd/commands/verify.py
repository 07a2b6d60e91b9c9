"""`ingestd verify` (audit the ledger: exit 1 on any violation), `failed` (the failed files and
why) and `retry` (let failed files, or done ones re-delivered with other content, run again)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import sys
from datetime import UTC, datetime
from typing import Any

from ingestd.commands import reading, target
from ingestd.commands.arguments import Command, add_dir
from ingestd.contracts.ledger import DONE, REDO, Inspector, RetryRequest, Stored
from ingestd.contracts.naming import is_data_name, sort_key, terminal_safe
from ingestd.contracts.source import Source


def _verify_arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("--expect", type=int, help="the number of files that must be done")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _failed_arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _retry_arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("names", nargs="+", metavar="NAME", help="failed file names")


def cmd_verify(args: argparse.Namespace) -> int:
    result, bad_lines = reading.audited(args, args.expect)
    summary = {**result.summary(), "bad_lines": bad_lines}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"records {summary['records']}: done {summary['done']}, failed {summary['failed']}, "
            f"duplicates {summary['duplicates']}, overlaps {summary['overlaps']}, "
            f"unfinished {summary['unfinished']}, bad lines {bad_lines}"
        )
        for worker, fields in summary["workers"].items():
            print(
                f"  {worker}: files {fields['files_processed']}, total {fields['total_time']:.4f}, "
                f"sum of squares {fields['sum_of_squares']:.4f}"
            )
        for violation in summary["violations"]:
            print(f"VIOLATION: {violation}")
        print("OK" if not summary["violations"] else "FAILED")
    return 1 if summary["violations"] else 0


def cmd_failed(args: argparse.Namespace) -> int:
    _, inspector = target.view(args)
    failed = inspector.failed_records()
    rows = [
        {"file": n, "error": r.error, "worker": r.worker}
        for n, r in sorted(failed.items(), key=lambda item: _order(item[0]))
        if is_data_name(n)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{terminal_safe(row['file'])}\t{terminal_safe(row['error'])}")
        if not rows:
            # On stderr: a script reading the list on stdout gets an empty list.
            print("no failed files", file=sys.stderr)
    return 0


def _order(name: str) -> tuple[int, Any]:
    """Oldest first; names this scheme does not take last, by name."""
    return (0, sort_key(name)) if is_data_name(name) else (1, name)


def cmd_retry(args: argparse.Namespace) -> int:
    source, inspector = target.view(args)
    who = f"{socket.gethostname()}:{os.getpid()}"
    problems = 0
    for name, why in request_retries(source, inspector, args.names, who):
        if why:
            print(f"ingestd: {terminal_safe(name)}: {why}", file=sys.stderr)
            problems += 1
        else:
            print(f"{terminal_safe(name)}: will be processed again")
    return 1 if problems else 0


def request_retries(
    source: Source, inspector: Inspector, names: list[str], who: str
) -> list[tuple[str, str]]:
    """Ask for each file to be processed again, as `who`: a failed file, or a done one whose
    source holds other content now (a re-delivery kept aside); anything else is refused.
    (name, why not; "" when asked), in the order given."""
    failed = inspector.failed_records()
    history = histories(inspector, set(names) - failed.keys())
    answers = []
    for name in names:
        request = RetryRequest(
            file=name,
            worker=who,
            requested_at=datetime.now(UTC).isoformat(timespec="microseconds"),
            previous_error=failed[name].error if name in failed else None,
        )
        why = ""
        if name not in failed:
            why, request = _redo(source, name, history.get(name, []), request)
        if not why:
            inspector.retry(request)
        answers.append((name, why))
    return answers


def histories(inspector: Inspector, names: set[str]) -> dict[str, list[Stored]]:
    """The records of each of `names`, in commit order: one pass over the ledger."""
    history: dict[str, list[Stored]] = {name: [] for name in names}
    if names:
        for record in inspector.records():
            if record.file in history:
                history[record.file].append(record)
    return history


def _redo(
    source: Source, name: str, records: list[Stored], request: RetryRequest, same: bool = False
) -> tuple[str, RetryRequest]:
    """(why not, "" if it may be) and the request that reopens a done file whose source
    holds other content than was processed (or the same content too, with `same`: a reload)."""
    from ingestd.commands.explain import standing_record

    standing = standing_record(records)
    if standing is None or standing.status != DONE:
        return "not a failed file, nor a done one" if not same else "not done", request
    try:
        _, sha256 = source.digest(name)
    except OSError:
        return "done, and no longer in the source", request
    processed = standing.sha256
    if not same and processed is not None and processed == sha256:
        return "done, and the source holds the very content that was processed", request
    return "", dataclasses.replace(request, status=REDO, previous_sha256=processed)


def redo(source: Source, name: str, records: list[Stored], who: str) -> tuple[str, RetryRequest]:
    """(why not, the request) to process a done file again whatever its content now."""
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    request = RetryRequest(file=name, worker=who, requested_at=now, previous_error=None)
    return _redo(source, name, records, request, same=True)


VERIFY = Command("verify", "audit the manifest; exit 1 on any violation", _verify_arguments,
                 cmd_verify)  # fmt: skip
FAILED = Command("failed", "list failed files with their reasons", _failed_arguments, cmd_failed)
RETRY = Command("retry", "let failed files be processed again", _retry_arguments, cmd_retry)
