"""The operator's commands besides `run`: status, pause, resume, verify, failed, retry, workers.

All of them read the state dir without disturbing running workers: lock files are probed with
a non-blocking shared lock that is dropped at once, never taken from an owner. A missing or
wrong DIR, or a state dir that cannot be read or written, is one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import os
import socket
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from .audit import Audit, audit
from .compose import operator_view
from .errors import StartupError
from .health import Verdict, live, ready, replaced
from .ledger import DONE, FAILED, FINISHED, PRUNE_AFTER, REDO, Inspector, RetryRequest
from .naming import (
    DEFAULT_KEY,
    by_key,
    count_missing_slots,
    format_name,
    is_data_name,
    key_of,
    oldest_first,
    sort_key,
    stamp_of,
    terminal_safe,
)
from .settings import file_ledger_path, is_bucket_url, is_database_url, state_dir_for
from .source import Source
from .startup import probe_writable

LISTED_SLOTS = 100  # missing slots named in `status`; past that they are only counted


def _state(args: argparse.Namespace) -> Path:
    if is_bucket_url(args.dir):  # no directory to default to: _problem insists on one
        return Path(file_ledger_path(args.ledger) or args.state_dir or "/nonexistent")
    return Path(file_ledger_path(args.ledger) or state_dir_for(args.dir, args.state_dir))


def _view(args: argparse.Namespace) -> tuple[Source, Inspector]:
    return operator_view(args.dir, _state(args), args.ledger, args.pg_schema, args.fleet)


def _present(source: Source) -> dict[str, tuple[int, int]]:
    try:
        return source.scan(lambda _: False).candidates
    except OSError:
        return {}


def _audit(args: argparse.Namespace, expected: int | None = None) -> tuple[Audit, int]:
    source, inspector = _view(args)
    bad: list[int] = []
    progress = Progress("reading records")

    def summaries() -> Iterator[dict[str, Any]]:
        return progress.counted(inspector.summaries(on_bad=lambda offset, _: bad.append(offset)))

    progress.say("listing the source")
    present = _present(source)
    try:
        return audit(summaries, present, expected, full=inspector.records), len(bad)
    finally:
        progress.done()


def status_report(args: argparse.Namespace) -> dict[str, Any]:
    source, inspector = _view(args)
    progress = Progress("")
    progress.say("listing the source")
    present = _present(source)
    progress.say("reading the ledger")
    # One definition with `verify` (audit.py): a record counts only for a data-file name.
    statuses = inspector.statuses()
    progress.say("summing up")
    for name in [n for n in statuses if not is_data_name(n)]:
        del statuses[name]  # in place: a copy of a million entries is a hundred megabytes
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
    keys = {key: _key_report(group, statuses, held, present, args.interval_minutes)
            for key, group in by_key(names, checked=True).items()}  # fmt: skip
    default = keys.get(DEFAULT_KEY) or _key_report(
        [], statuses, held, present, args.interval_minutes
    )
    progress.done()
    ages = [a for k in keys.values() if (a := k["oldest_unprocessed_age_seconds"]) is not None]
    beats = inspector.workers()
    # A lost worker replaced on its host (crashed, restarted) needs nobody: listed apart.
    lost = [b for b in beats if b.lost and not replaced(b, beats)]
    swapped = [b for b in beats if b.lost and replaced(b, beats)]
    # What live workers report: keys a failed file holds (--on-key-failure block), and how
    # far publishing got (--publish-in-order; the furthest any worker saw, per key).
    blocked: dict[str, str] = {}
    published: dict[str, str] = {}
    changed: dict[str, str] = {}  # re-delivered with other content after it was finished
    publish_errors: dict[str, str] = {}  # worker -> why its last publishing pass failed
    for beat in beats:
        if beat.lost:
            continue
        for key, name in beat.blocked_keys.items():
            if statuses.get(name) == FAILED:  # still (a heartbeat may predate a retry)
                blocked[key] = min(blocked.get(key, name), name, key=sort_key)
        for key, name in beat.published.items():
            if is_data_name(name):
                published[key] = max(published.get(key, name), name, key=sort_key)
        if beat.publish_error:
            publish_errors[beat.worker] = beat.publish_error
        for name, now in beat.changed.items():
            if statuses.get(name) in FINISHED and name in present:
                changed[name] = now
    for key, report in keys.items():
        report["blocked_by"] = blocked.get(key)
        report["published"] = published.get(key)
    return {
        "data_dir": str(args.dir),
        "paused": inspector.paused(),
        "done": sum(1 for status in statuses.values() if status == DONE),
        "failed": sum(1 for status in statuses.values() if status == FAILED),
        "pending": len(pending),
        "in_progress": working,
        "workers": [b.to_dict() for b in beats if not b.lost],
        # Lost within the grace period (status exits 1); past it, a running worker prunes
        # the heartbeat, and until then it is only listed.
        "lost_workers": [b.to_dict() for b in lost if b.lost_for <= PRUNE_AFTER],
        "gone_workers": [b.to_dict() for b in lost if b.lost_for > PRUNE_AFTER],
        "replaced_workers": [b.to_dict() for b in swapped],
        "problems": inspector.problems(),
        # The default key's (names without a key); each key's below, when there are keys.
        "low_watermark": default["low_watermark"],
        "oldest_unprocessed_age_seconds": max(ages, default=None),
        "missing_slot_count": default["missing_slot_count"],
        "missing_slots": default["missing_slots"],
        "keys": keys if set(keys) - {DEFAULT_KEY} else {},
        "blocked_keys": blocked,
        "published": published,
        "changed_after_done": changed,
        "publish_errors": publish_errors,
    }


def _key_report(
    names: list[str],
    statuses: dict[str, str],
    held: set[str],
    present: dict[str, tuple[int, int]],
    minutes: float,
) -> dict[str, Any]:
    """One key's watermark, oldest waiting file and missing slots; `names` oldest first."""
    watermark = None
    for name in names:
        if statuses.get(name) not in FINISHED:
            break
        watermark = name
    unfinished = [n for n in names if statuses.get(n) not in FINISHED]
    # Waiting: unfinished and nobody working on it (a file in progress is not waiting).
    waiting = [n for n in unfinished if n not in held and n in present]
    oldest_age = None
    if waiting:
        oldest_age = round(time.time() - present[waiting[0]][1] / 1e9, 1)
    # Oldest first and unique already: the stamps are streamed, never held.
    stamps = (stamp_of(n) for n in names)
    gap_count, gaps = count_missing_slots(
        stamps, timedelta(minutes=minutes), LISTED_SLOTS, ordered=True
    )
    key = key_of(names[0]) if names else DEFAULT_KEY
    return {
        "done": sum(1 for n in names if statuses.get(n) == DONE),
        "failed": sum(1 for n in names if statuses.get(n) == FAILED),
        "waiting": len(unfinished),
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


def _prometheus(args: argparse.Namespace, report: dict[str, Any]) -> bytes:
    try:
        from .metrics import (
            OUTCOME_DONE,
            OUTCOME_REDONE,
            Fleet,
            fleet_exposition,
            fleet_outcomes,
        )
    except ImportError:
        raise OSError("--prometheus needs: pip install 'ingestd[metrics]'") from None
    result, _ = _audit(args)
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


def cmd_status(args: argparse.Namespace) -> int:
    report = status_report(args)
    if args.prometheus:
        # For a scrape script: the numbers say what needs attention, so exit 0.
        sys.stdout.buffer.write(_prometheus(args, report))
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


def cmd_workers(args: argparse.Namespace) -> int:
    _, inspector = _view(args)
    pruned = inspector.prune_workers(0.0) if args.prune else []
    rows = [
        {
            "worker": beat.worker,
            "host": beat.host,
            "pid": beat.pid,
            "state": "lost" if beat.lost else beat.state,
            "age_seconds": beat.age_seconds,
            "files_processed": beat.files_processed,
        }
        for beat in inspector.workers()
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
        if not rows and not pruned:
            print("no workers: no heartbeat in the ledger", file=sys.stderr)
    return 1 if any(row["state"] == "lost" for row in rows) else 0


def cmd_health(args: argparse.Namespace) -> int:
    source, inspector = _view(args)
    try:
        verdict = live(inspector.workers(), args.worker)
        if verdict.healthy and args.ready:
            writable: Exception | None = None
            if not is_database_url(args.ledger):
                try:
                    probe_writable(_state(args))
                except OSError as exc:
                    writable = exc
            verdict = ready(source, inspector, writable)
    except OSError as exc:  # the ledger cannot be read: unhealthy, not a usage error
        verdict = Verdict(False, f"ledger unreachable: {exc}")
    print(verdict.line)
    return 0 if verdict.healthy else 1


def cmd_explain(args: argparse.Namespace) -> int:
    from .explain import Facts, explain

    name = os.path.basename(args.name)
    if name != args.name and not _in_source(args):
        print(f"ingestd: error: {args.name} is not in {args.dir}: give the file's name "
              f"(e.g. {name})", file=sys.stderr)  # fmt: skip
        return 2
    source, inspector = _view(args)
    records = [r for r in inspector.records() if r.get("file") == name]
    present: tuple[int, int | None] | None = None
    sha256 = None
    signature = source.signature(name) if is_data_name(name) else None
    if signature is not None:
        local = not is_bucket_url(args.dir)
        present = (signature[0], signature[1] if local else None)  # a bucket's is an ETag
        if any(r.get("status") == DONE for r in records):
            with contextlib.suppress(OSError):
                sha256 = source.digest(name)[1]
    held, owner = inspector.claim(name)
    facts = Facts(name, present, records, held, owner, inspector.paused(), sha256)
    result = explain(facts)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(terminal_safe(f"{result.file}: {result.state}: {result.why}"))
        for what, detail in result.lines:
            print(f"  {what:<8} {terminal_safe(detail)}")
    return 0 if result.state not in ("unknown", "ignored") else 1


def _in_source(args: argparse.Namespace) -> bool:
    """Whether `args.name`, a path, names a file in DIR itself (so its base name is meant)."""
    if is_bucket_url(args.dir):
        return False
    parent = os.path.dirname(os.path.abspath(str(args.name)))
    return os.path.realpath(parent) == os.path.realpath(str(args.dir))


def cmd_compact(args: argparse.Namespace) -> int:
    if is_database_url(args.ledger):
        why = "a postgresql:// ledger is a table: nothing to compact"
        print(f"ingestd: error: compact rewrites a state dir's manifest; {why}", file=sys.stderr)
        return 2
    from .ledgers.file.compact import compact

    state = _state(args)
    if not (state / "manifest.jsonl").exists():
        print(f"nothing to compact: no manifest in {state}")
        return 0
    source, _ = _view(args)
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
    from .outputs import STAGING, read_marks

    present = set(_present(source))
    out = args.output_dir or (None if is_bucket_url(args.dir) else Path(args.dir) / "out")
    if out is None or not (out / STAGING).is_dir():
        return _Needed(present, set(), {})  # no publishing here
    staged = {entry.name for entry in os.scandir(out / STAGING) if entry.is_dir()}
    try:
        marks: dict[str, str] | None = read_marks(out).published
    except (OSError, ValueError):
        marks = None
    return _Needed(present, staged, marks)


T = TypeVar("T")


def cmd_timeline(args: argparse.Namespace) -> int:
    from . import timeline

    if args.output.suffix.lower() not in (".png", ".svg"):
        print(f"ingestd: error: {args.output}: give a .png or .svg file name", file=sys.stderr)
        return 2
    if args.machines is not None and args.machines < 1:
        print("ingestd: error: --machines must be >= 1", file=sys.stderr)
        return 2
    try:
        from . import plot
    except ImportError:
        raise OSError("timeline needs: pip install 'ingestd[plot]'") from None
    since = args.since
    if args.last is not None:
        since = datetime.now(UTC) - args.last
    _, inspector = _view(args)
    progress = Progress("reading records")
    drawn = timeline.build(progress.counted(inspector.records()), args.machines, since)
    progress.say(f"drawing {len(drawn.actual)} files")
    plot.draw(drawn, args.output, str(args.dir))
    progress.done()
    actual, ideal = drawn.actual, drawn.ideal
    if actual:
        span, best = drawn.makespan(actual), drawn.makespan(ideal)
        unit = drawn.unit
        ratio = f" ({span / best:.3f}x)" if best > 0 else ""
        print(f"{args.output}: {len(actual)} files on {len(drawn.lanes)} workers; makespan "
              f"{span:.1f} {unit}, ideal FIFO {best:.1f} {unit}{ratio}")  # fmt: skip
    else:
        print(f"{args.output}: no finished files" + (" in that time" if since else " yet"))
    return 0


class Progress:
    """A line on stderr saying what a long command is doing, only when stderr is a terminal
    (a script or a log file gets nothing)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.on = sys.stderr.isatty()
        self._last = 0.0

    def counted(self, items: Iterable[T]) -> Iterator[T]:
        for count, item in enumerate(items, 1):
            if self.on and count % 10_000 == 0 and time.monotonic() - self._last > 0.2:
                self._last = time.monotonic()
                self.say(f"{self.what}: {count:,}")
            yield item

    def say(self, text: str) -> None:
        if self.on:
            print(f"\r\x1b[K{text} ...", end="", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self.on:
            print("\r\x1b[K", end="", file=sys.stderr, flush=True)


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
    _, inspector = _view(args)
    failed = inspector.failed_records()
    rows = [
        {"file": n, "error": r.get("error"), "worker": r.get("worker")}
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
    """A failed file, or a done one whose source holds other content now (a re-delivery
    kept aside), is processed again; anything else is refused, one line each."""
    source, inspector = _view(args)
    failed = inspector.failed_records()
    others = set(args.names) - failed.keys()
    history: dict[str, list[dict[str, Any]]] = {name: [] for name in others}
    if others:
        for record in inspector.records():
            if record.get("file") in history:
                history[record["file"]].append(record)
    problems = 0
    for name in args.names:
        request = RetryRequest(
            file=name,
            worker=f"{socket.gethostname()}:{os.getpid()}",
            requested_at=datetime.now(UTC).isoformat(timespec="microseconds"),
            previous_error=failed[name].get("error") if name in failed else None,
        )
        if name not in failed:
            why, request = _redo(source, name, history.get(name, []), request)
            if why:
                print(f"ingestd: {terminal_safe(name)}: {why}", file=sys.stderr)
                problems += 1
                continue
        inspector.retry(request)
        print(f"{terminal_safe(name)}: will be processed again")
    return 1 if problems else 0


def _redo(
    source: Source, name: str, records: list[dict[str, Any]], request: RetryRequest
) -> tuple[str, RetryRequest]:
    """(why not, "" if it may be) and the request that reopens a done file whose source
    holds other content than was processed."""
    from .explain import _standing

    standing = _standing(records)
    if standing is None or standing.get("status") != DONE:
        return "not a failed file, nor a done one", request
    try:
        _, sha256 = source.digest(name)
    except OSError:
        return "done, and no longer in the source", request
    processed = standing.get("sha256")
    if processed is not None and processed == sha256:
        return "done, and the source holds the very content that was processed", request
    return "", dataclasses.replace(request, status=REDO, previous_sha256=processed)


def cmd_pause(args: argparse.Namespace, paused: bool) -> int:
    _, inspector = _view(args)
    if not inspector.exists():
        print(f"ingestd: error: no state dir at {_state(args)}", file=sys.stderr)
        return 2
    changed = inspector.set_paused(paused)
    word = "paused" if paused else "resumed"
    print(f"{word}" if changed else f"already {word}")
    return 0


def _problem(args: argparse.Namespace) -> str | None:
    """Why DIR (and the state dir) cannot be inspected, or None."""
    if is_bucket_url(args.dir):
        if not (args.state_dir or args.ledger):
            return f"{args.dir}: a bucket source needs --ledger or --state-dir"
        return None
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
        except BrokenPipeError:
            raise  # the reader closed the pipe: not an error (cli.main ends quietly)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            problem = f"{exc.strerror or exc}{where}"
        except StartupError as exc:
            problem = str(exc)
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
    if command == "health":
        return cmd_health(args)
    if command == "timeline":
        return cmd_timeline(args)
    if command == "explain":
        return cmd_explain(args)
    if command == "compact":
        return cmd_compact(args)
    raise AssertionError(command)
