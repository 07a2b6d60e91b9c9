"""The operator's commands besides `run`: status, pause, resume, verify, failed, retry, workers.

All of them read the state dir without disturbing running workers: lock files are probed with
a non-blocking shared lock that is dropped at once, never taken from an owner. A missing or
wrong DIR, or a state dir that cannot be read or written, is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from . import claim as claims
from .audit import Audit, audit
from .heartbeat import PRUNE_AFTER, is_lost, lost_for, prune_lost, read_heartbeats, set_paused
from .manifest import DONE, FAILED, FINISHED, RETRY, Manifest, read_records
from .naming import count_missing_slots, format_name, is_data_name, oldest_first, parse_name
from .settings import state_dir_for
from .watcher import scan

LISTED_SLOTS = 100  # missing slots named in `status`; past that they are only counted


def _state(args: argparse.Namespace) -> Path:
    return Path(state_dir_for(args.dir, args.state_dir))


def _present(data_dir: Path, state: Path) -> dict[str, tuple[int, int]]:
    hide = state.name if state.parent == data_dir else None
    try:
        return scan(data_dir, lambda _: False, hide).candidates
    except OSError:
        return {}


def _audit(args: argparse.Namespace, expected: int | None = None) -> tuple[Audit, int]:
    state = _state(args)
    bad: list[int] = []
    records = read_records(state / "manifest.jsonl", on_bad=lambda offset, _: bad.append(offset))
    return audit(records, _present(args.dir, state), expected), len(bad)


def in_progress(locks_dir: Path) -> list[dict[str, Any]]:
    """Files whose claim is held right now, with owner and age."""
    found = []
    try:
        paths = sorted(locks_dir.glob("*.lock"))
    except OSError:
        return []
    now = datetime.now(UTC)
    for path in paths:
        try:
            held, owner = claims.probe(path)
        except OSError:
            continue  # released and removed while we looked
        if not held:
            continue
        owner = owner or {}
        age = None
        with contextlib.suppress(KeyError, TypeError, ValueError):
            age = (now - datetime.fromisoformat(owner["claimed_at"])).total_seconds()
        found.append(
            {
                "file": path.name.removesuffix(".lock"),
                "worker": owner.get("worker"),
                "attempt": owner.get("attempt"),
                "age_seconds": None if age is None else round(age, 1),
            }
        )
    return found


def status_report(args: argparse.Namespace) -> dict[str, Any]:
    state = _state(args)
    present = _present(args.dir, state)
    # The daemon's own reader: its fast path keeps a million-record manifest to seconds.
    manifest = Manifest(state / "manifest.jsonl", state / "manifest.lock")
    try:
        manifest.refresh()
    finally:
        manifest.close()
    # One definition with `verify` (audit.py): a record counts only for a data-file name.
    statuses = {name: st for name, st in manifest.status.items() if is_data_name(name)}
    finished = {name for name, status in statuses.items() if status in FINISHED}
    working = in_progress(state / "locks")
    held = {w["file"] for w in working}
    pending = [n for n in oldest_first(present) if n not in finished and n not in held]
    stamps = {n: s for n in present.keys() | finished if (s := parse_name(n)) is not None}
    # Data-file names sort by time as plain strings (fixed width, zero-padded).
    known = sorted(stamps)
    watermark = None
    for name in known:
        if name not in finished:
            break
        watermark = name
    oldest_age = None
    unfinished = [n for n in known if n not in finished]
    if unfinished and unfinished[0] in present:
        oldest_age = round(time.time() - present[unfinished[0]][1] / 1e9, 1)
    interval = timedelta(minutes=args.interval_minutes)
    gap_count, gaps = count_missing_slots(stamps.values(), interval, LISTED_SLOTS)
    beats = read_heartbeats(state / "workers")
    lost = [b for b in beats if is_lost(b)]
    return {
        "data_dir": str(args.dir),
        "paused": (state / "paused").exists(),
        "done": sum(1 for status in statuses.values() if status == DONE),
        "failed": sum(1 for status in statuses.values() if status == FAILED),
        "pending": len(pending),
        "in_progress": working,
        "workers": [b for b in beats if not is_lost(b)],
        # Lost within the grace period (status exits 1); past it, a running worker prunes
        # the heartbeat, and until then it is only listed.
        "lost_workers": [b for b in lost if lost_for(b) <= PRUNE_AFTER],
        "gone_workers": [b for b in lost if lost_for(b) > PRUNE_AFTER],
        "unusable_locks": claims.unusable_lock_paths(state / "locks"),
        "low_watermark": watermark,
        "oldest_unprocessed_age_seconds": oldest_age,
        "missing_slot_count": gap_count,
        "missing_slots": [format_name(stamp) for stamp in gaps],  # the first LISTED_SLOTS
    }


def _print_status(report: dict[str, Any]) -> None:
    print(f"data dir       {report['data_dir']}" + ("   [PAUSED]" if report["paused"] else ""))
    print(
        f"files          done {report['done']}, failed {report['failed']}, "
        f"pending {report['pending']}, in progress {len(report['in_progress'])}"
    )
    for item in report["in_progress"]:
        print(f"  working      {item['file']}  {item['worker']}  {item['age_seconds']} s")
    for beat in report["workers"]:
        done = beat.get("files_processed")
        print(f"worker         {beat['worker']}  {beat.get('state')}  done {done}")
    for beat in report["lost_workers"]:
        age = beat["age_seconds"]
        print(f"LOST worker    {beat['worker']}  (no heartbeat for {age:.0f} s)")
    for beat in report["gone_workers"]:
        print(f"gone worker    {beat['worker']}  (lost long ago: ingestd workers --prune)")
    for name in report["unusable_locks"]:
        print(f"BAD lock path  {name}  (not a regular file: that file cannot be claimed)")
    watermark = report["low_watermark"]
    print(f"low watermark  {watermark or '- (nothing done yet)'}")
    age = report["oldest_unprocessed_age_seconds"]
    print(f"oldest waiting {'-' if age is None else f'{age} s'}")
    count, gaps = report["missing_slot_count"], report["missing_slots"]
    more = f" (and {count - 10} more)" if count > 10 else ""
    print(f"missing slots  {count}" + (f": {', '.join(gaps[:10])}{more}" if gaps else ""))


def cmd_status(args: argparse.Namespace) -> int:
    report = status_report(args)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_status(report)
    attention = report["failed"] or report["lost_workers"] or report["unusable_locks"]
    return 1 if attention else 0


def cmd_workers(args: argparse.Namespace) -> int:
    workers_dir = _state(args) / "workers"
    pruned = prune_lost(workers_dir, after=0.0) if args.prune else []
    beats = read_heartbeats(workers_dir)
    rows = [
        {
            "worker": beat.get("worker"),
            "host": beat.get("host"),
            "pid": beat.get("pid"),
            "state": "lost" if is_lost(beat) else beat.get("state"),
            "age_seconds": beat["age_seconds"],
            "files_processed": beat.get("files_processed"),
        }
        for beat in beats
    ]
    if args.json:
        print(json.dumps({"workers": rows, "pruned": pruned}, indent=2))
    else:
        for row in rows:
            print(
                f"{row['worker']}\t{row['state']}\theartbeat {row['age_seconds']:.0f} s ago"
                f"\tdone {row['files_processed']}"
            )
        for worker in pruned:
            print(f"pruned {worker}")
    return 1 if any(row["state"] == "lost" for row in rows) else 0


def cmd_verify(args: argparse.Namespace) -> int:
    result, bad_lines = _audit(args, args.expect)
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
    result, _ = _audit(args)
    rows = [
        {"file": n, "error": r.get("error"), "worker": r.get("worker")}
        for n, r in sorted(result.failed.items())
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            print(f"{row['file']}\t{row['error']}")
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    state = _state(args)
    result, _ = _audit(args)
    manifest = Manifest(state / "manifest.jsonl", state / "manifest.lock")
    problems = 0
    try:
        for name in args.names:
            if name not in result.failed:
                print(f"ingestd: {name}: not a failed file", file=sys.stderr)
                problems += 1
                continue
            record = {
                "file": name,
                "status": RETRY,
                "worker": f"{socket.gethostname()}:{os.getpid()}",
                "requested_at": datetime.now(UTC).isoformat(timespec="microseconds"),
                "previous_error": result.failed[name].get("error"),
            }
            manifest.commit(record)
            print(f"{name}: will be processed again")
    finally:
        manifest.close()
    return 1 if problems else 0


def cmd_pause(args: argparse.Namespace, paused: bool) -> int:
    state = _state(args)
    if not state.is_dir():
        print(f"ingestd: error: no state dir at {state}", file=sys.stderr)
        return 2
    changed = set_paused(state / "paused", paused)
    word = "paused" if paused else "resumed"
    print(f"{word}" if changed else f"already {word}")
    return 0


def _problem(args: argparse.Namespace) -> str | None:
    """Why DIR (and the state dir) cannot be inspected, or None."""
    if not args.dir.exists():
        return f"no such directory: {args.dir}"
    if not args.dir.is_dir():
        return f"not a directory: {args.dir}"
    state = _state(args)
    if state.exists() and not state.is_dir():
        return f"state dir is not a directory: {state}"
    return None


def main(args: argparse.Namespace) -> int:
    # A typo in DIR must not look like a healthy, empty fleet.
    problem = _problem(args)
    if problem is None:
        try:
            return _dispatch(args)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            problem = f"{exc.strerror or exc}{where}"
    print(f"ingestd: error: {problem}", file=sys.stderr)
    return 2


def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "status":
        return cmd_status(args)
    if command in ("pause", "resume"):
        return cmd_pause(args, command == "pause")
    if command == "verify":
        return cmd_verify(args)
    if command == "failed":
        return cmd_failed(args)
    if command == "retry":
        return cmd_retry(args)
    if command == "workers":
        return cmd_workers(args)
    raise AssertionError(command)
