"""`ingestd status`: what the fleet is doing, and whether it needs attention (exit 1).

It reads the ledger without disturbing running workers: lock files are probed with a
non-blocking shared lock that is dropped at once, never taken from an owner.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ingestd.commands import reading, target
from ingestd.commands.arguments import Command, add_dir, interval_minutes
from ingestd.contracts.ledger import DONE, FAILED, FINISHED, PRUNE_AFTER, Heartbeat, Inspector
from ingestd.contracts.naming import (
    DEFAULT_KEY,
    by_key,
    count_missing_minutes,
    format_name,
    invalid_names,
    is_data_name,
    key_of,
    minute_of,
    oldest_first,
    sort_key,
    terminal_safe,
)
from ingestd.contracts.source import Source
from ingestd.runtime.health import replaced

LISTED_SLOTS = 100  # missing slots named in `status`; past that they are only counted
WAITING_LISTED = 20  # waiting files named in `status --json`; all are counted


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--prometheus", action="store_true",
                        help="the fleet's metrics in Prometheus text format, once")  # fmt: skip
    parser.add_argument(
        "--interval-minutes",
        type=interval_minutes,
        default=15.0,
        metavar="M",
        help="the provider's schedule step, for missing slots (15)",
    )


def cmd_status(args: argparse.Namespace) -> int:
    report = status_report(args)
    if args.prometheus:
        # For a scrape script: the numbers say what needs attention, so exit 0.
        source, inspector = target.view(args)
        sys.stdout.buffer.write(prometheus_of(source, inspector, report))
        return 0
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_status(report)
    attention = (
        report["failed"]
        or report["lost_workers"]
        or report["problems"]
        or report["blocked_keys"]
        or report["changed_after_done"]
        or report["publish_errors"]
    )
    return 1 if attention else 0


COMMAND = Command("status", "what the fleet is doing; exit 1 if it needs attention", arguments,
                  cmd_status)  # fmt: skip


def status_report(args: argparse.Namespace) -> dict[str, Any]:
    source, inspector = target.view(args)
    return report_of(source, inspector, str(args.dir), args.interval_minutes)


def report_of(
    source: Source, inspector: Inspector, label: str, minutes: float = 15.0
) -> dict[str, Any]:
    """What `status` says of the fleet on `source` (named `label`), as one dict."""
    progress = reading.Progress("")
    present, statuses = _read(source, inspector, progress)
    working = [asdict(holding) for holding in inspector.holdings()]
    held = {w["file"] for w in working}
    pending = [
        n for n in oldest_first(present) if statuses.get(n) not in FINISHED and n not in held
    ]
    # Every name once: the finished ones, and those present that are not (yet) finished;
    # all data-file names already (the filter above, and the scan's own).
    names = itertools.chain(
        (n for n, st in statuses.items() if st in FINISHED),
        (n for n in present if statuses.get(n) not in FINISHED),
    )
    keys = {key: _key_report(group, statuses, held, present, minutes)
            for key, group in by_key(names, checked=True).items()}  # fmt: skip
    default = keys.get(DEFAULT_KEY) or _key_report([], statuses, held, present, minutes)
    progress.done()
    now = time.time()
    ages = [a for k in keys.values() if (a := k["oldest_unprocessed_age_seconds"]) is not None]
    beats = inspector.workers()
    told = _from_heartbeats(beats, statuses, present)
    blocked, published = told.blocked, told.published
    for key, report in keys.items():
        report["blocked_by"] = blocked.get(key)
        report["published"] = published.get(key)
    return {
        "data_dir": label,
        "paused": inspector.paused(),
        "done": sum(1 for status in statuses.values() if status == DONE),
        "failed": sum(1 for status in statuses.values() if status == FAILED),
        "pending": len(pending),
        # The first few waiting, oldest first, with their ages (s since modified).
        "waiting": [
            {"file": n, "age_seconds": round(now - present[n][1] / 1e9, 1)}
            for n in pending[:WAITING_LISTED]
        ],
        "in_progress": working,
        **_workers(beats),
        "problems": inspector.problems(),
        # The default key's (names without a key); each key's below, when there are keys.
        "low_watermark": default["low_watermark"],
        "oldest_unprocessed_age_seconds": max(ages, default=None),
        "missing_slot_count": default["missing_slot_count"],
        "missing_slots": default["missing_slots"],
        "keys": keys if set(keys) - {DEFAULT_KEY} else {},
        "blocked_keys": blocked,
        "published": published,
        "changed_after_done": told.changed,
        "publish_errors": told.publish_errors,
    }


def _workers(beats: list[Heartbeat]) -> dict[str, list[dict[str, Any]]]:
    # A lost worker replaced on its host (crashed, restarted) needs nobody: listed apart.
    lost = [b for b in beats if b.lost and not replaced(b, beats)]
    swapped = [b for b in beats if b.lost and replaced(b, beats)]
    return {
        "workers": [b.to_dict() for b in beats if not b.lost],
        # Lost within the grace period (status exits 1); past it, a running worker prunes
        # the heartbeat, and until then it is only listed.
        "lost_workers": [b.to_dict() for b in lost if b.lost_for <= PRUNE_AFTER],
        "gone_workers": [b.to_dict() for b in lost if b.lost_for > PRUNE_AFTER],
        "replaced_workers": [b.to_dict() for b in swapped],
    }


def _read(
    source: Source, inspector: Inspector, progress: reading.Progress
) -> tuple[dict[str, tuple[int, int]], dict[str, str]]:
    """What is present, and each data file's status."""
    progress.say("listing the source")
    present = reading.present(source)
    progress.say("reading the ledger")
    # One definition with `verify` (audit.py): a record counts only for a data-file name.
    statuses = inspector.statuses()
    progress.say("summing up")
    for name in invalid_names(statuses.keys()):
        del statuses[name]  # in place: a copy of a million entries is a hundred megabytes
    return present, statuses


@dataclass
class _Told:
    """What live workers report: keys a failed file holds (--on-key-failure block), how far
    publishing got (--publish-in-order; the furthest any worker saw, per key), files
    re-delivered with other content after they were finished, and failing passes."""

    blocked: dict[str, str] = field(default_factory=dict)
    published: dict[str, str] = field(default_factory=dict)
    changed: dict[str, str] = field(default_factory=dict)
    publish_errors: dict[str, str] = field(default_factory=dict)  # worker -> why


def _from_heartbeats(
    beats: list[Heartbeat], statuses: dict[str, str], present: dict[str, tuple[int, int]]
) -> _Told:
    told = _Told()
    for beat in beats:
        if beat.lost:
            continue
        for key, name in beat.blocked_keys.items():
            if statuses.get(name) == FAILED:  # still (a heartbeat may predate a retry)
                told.blocked[key] = min(told.blocked.get(key, name), name, key=sort_key)
        for key, name in beat.published.items():
            if is_data_name(name):
                told.published[key] = max(told.published.get(key, name), name, key=sort_key)
        if beat.publish_error:
            told.publish_errors[beat.worker] = beat.publish_error
        for name, now in beat.changed.items():
            if statuses.get(name) in FINISHED and name in present:
                told.changed[name] = now
    return told


def _key_report(
    names: list[str],
    statuses: dict[str, str],
    held: set[str],
    present: dict[str, tuple[int, int]],
    minutes: float,
) -> dict[str, Any]:
    """One key's watermark, oldest waiting file and missing slots; `names` oldest first."""
    # One pass over the names (a million of them): counts, the watermark, the first waiting.
    watermark, done, failed, unfinished = None, 0, 0, 0
    first_waiting = None
    get = statuses.get
    for name in names:
        status = get(name)
        if status == DONE:
            done += 1
        elif status == FAILED:
            failed += 1
        else:
            unfinished += 1
            # Waiting: unfinished and nobody working on it (in progress is not waiting).
            if first_waiting is None and name not in held and name in present:
                first_waiting = name
            continue
        if unfinished == 0:
            watermark = name
    oldest_age = None
    if first_waiting is not None:
        oldest_age = round(time.time() - present[first_waiting][1] / 1e9, 1)
    # Oldest first and unique already: the times are streamed, never held.
    gap_count, gaps = count_missing_minutes(map(minute_of, names), minutes, LISTED_SLOTS)
    key = key_of(names[0]) if names else DEFAULT_KEY
    return {
        "done": done,
        "failed": failed,
        "waiting": unfinished,
        "low_watermark": watermark,
        "oldest_unprocessed_age_seconds": oldest_age,
        "missing_slot_count": gap_count,
        "missing_slots": [format_name(stamp, key) for stamp in gaps],  # the first LISTED_SLOTS
    }


def _print_status(report: dict[str, Any]) -> None:
    safe = terminal_safe
    print(
        f"data dir       {safe(report['data_dir'])}" + ("   [PAUSED]" if report["paused"] else "")
    )
    print(
        f"files          done {report['done']}, failed {report['failed']}, "
        f"pending {report['pending']}, in progress {len(report['in_progress'])}"
    )
    for item in report["in_progress"]:
        print(f"  working      {safe(item['file'])}  {safe(item['worker'])}  "
              f"{item['age_seconds']} s")  # fmt: skip
    for beat in report["workers"]:
        done = beat.get("files_processed")
        print(f"worker         {safe(beat['worker'])}  {beat.get('state')}  done {done}")
    for beat in report["lost_workers"]:
        age = beat["age_seconds"]
        print(f"LOST worker    {safe(beat['worker'])}  (no heartbeat for {age:.0f} s)")
    for beat in report["gone_workers"]:
        print(f"gone worker    {safe(beat['worker'])}  (lost long ago: ingestd workers --prune)")
    for beat in report["replaced_workers"]:
        print(f"replaced       {safe(beat['worker'])}  (restarted on {safe(beat['host'])})")
    for problem in report["problems"]:
        print(f"PROBLEM        {safe(problem)}")
    keyed_only = report["keys"] and DEFAULT_KEY not in report["keys"]
    watermark = report["low_watermark"]
    if keyed_only:
        print("low watermark  per key, below")
    else:
        print(f"low watermark  {safe(watermark) if watermark else '- (nothing done yet)'}")
    age = report["oldest_unprocessed_age_seconds"]
    print(f"oldest waiting {'-' if age is None else f'{age} s'}")
    if not keyed_only:
        count, gaps = report["missing_slot_count"], report["missing_slots"]
        more = f" (and {count - 10} more)" if count > 10 else ""
        listed = ", ".join(safe(g) for g in gaps[:10])
        print(f"missing slots  {count}" + (f": {listed}{more}" if gaps else ""))
    for key, each in report["keys"].items():
        print(f"key {safe(key) or '(none)':<10} done {each['done']}, failed {each['failed']}, "
              f"waiting {each['waiting']}, low watermark {safe(each['low_watermark'] or '-')}, "
              f"missing slots {each['missing_slot_count']}")  # fmt: skip
    for key, name in sorted(report["published"].items()):
        print(f"published      {'key ' + safe(key) + ': ' if key else ''}up to {safe(name)}")
    for worker, error in sorted(report["publish_errors"].items()):
        print(f"PUBLISHING     failing on {safe(worker)}: {safe(error)}")
    for key, name in sorted(report["blocked_keys"].items()):
        print(f"BLOCKED key    {safe(key) or '(none)'} by failed {safe(name)} "
              "(ingestd retry, or remove it)")  # fmt: skip
    for name in sorted(report["changed_after_done"], key=sort_key):
        print(f"CHANGED        {safe(name)} holds other content than was processed (kept; "
              "ingestd explain DIR NAME)")  # fmt: skip


def prometheus_of(source: Source, inspector: Inspector, report: dict[str, Any]) -> bytes:
    """The fleet's metrics in Prometheus text format; OSError without the metrics extra."""
    try:
        from ingestd.runtime.metrics import (
            OUTCOME_DONE,
            OUTCOME_REDONE,
            Fleet,
            fleet_exposition,
            fleet_outcomes,
        )
    except ImportError:
        raise OSError("--prometheus needs: pip install 'ingestd[metrics]'") from None
    result, _ = reading.audited_view(source, inspector)
    outcomes = fleet_outcomes(result.failed.values())
    outcomes[OUTCOME_REDONE] = result.redone
    outcomes[OUTCOME_DONE] = len(result.done) - result.redone
    last = result.last_done_at
    age = report["oldest_unprocessed_age_seconds"]
    return fleet_exposition(
        Fleet(
            outcomes=outcomes,
            in_progress=len(report["in_progress"]),
            pending=report["pending"],
            failed=report["failed"],
            oldest_pending=None if age is None else round(time.time() - age, 1),
            last_done=None if last is None else last.timestamp(),
            ledger_files=len(result.done) + len(result.failed),
            workers_alive=len(report["workers"]),
            paused=report["paused"],
        )
    )
