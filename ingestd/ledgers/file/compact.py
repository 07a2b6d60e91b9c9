"""`ingestd compact`: rewrite the manifest to one record per file, safely while workers run.

Under the manifest lock (so no append can slip in between the read and the rename), every
complete line is read; per file the record that stands is kept (its first `done`, else its
last record), byte for byte and in the original order, so each worker's statistics recompute
the same. The new file is written beside the old one, fsynced, and renamed over it; with
`archive`, the old file is first linked to a dated name. Readers notice the new inode and read
it from its start, keeping what they knew. Torn and malformed lines are dropped (counted).

`retain_days` also drops the records of files that are no longer in the source and finished
more than that many days ago: the manifest stops growing with files long moved away. Such a
file, if it ever came back, would be processed again; that is the point of the option.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from ingestd.contracts.ledger import REDO
from ingestd.ledgers.file.manifest import DONE, parse_head, split_complete

_CHUNK = 4 << 20


@dataclass(frozen=True)
class Compaction:
    records_before: int
    records_after: int
    bad_lines: int
    expired: int  # records dropped by retain_days
    bytes_before: int
    bytes_after: int
    archive: Path | None


def _lines(handle: BinaryIO) -> Iterator[bytes]:
    """Every complete line (without its newline); a torn tail (a writer killed mid-line) is
    left out. Streams: a million-record manifest is never all in memory."""
    handle.seek(0)
    carry = b""
    while chunk := handle.read(_CHUNK):
        lines, used = split_complete(carry + chunk)
        carry = (carry + chunk)[used:]
        yield from lines


def _standing(handle: BinaryIO) -> tuple[dict[str, int], int, int]:
    """(name -> line number of the record that stands, records, bad lines)."""
    keep: dict[str, int] = {}
    done: set[str] = set()
    records = bad = 0
    for index, line in enumerate(_lines(handle)):
        if not line.strip():
            continue
        head = parse_head(line)
        if head is None:
            bad += 1
            continue
        records += 1
        name, status = head
        if status == REDO:
            done.discard(name)  # reopened by an operator: what comes after it stands
        elif name in done:
            continue  # a second done record: the first stands (verify reports the rest)
        keep[name] = index
        if status == DONE:
            done.add(name)
    return keep, records, bad


@contextlib.contextmanager
def _removed_on_failure(path: Path) -> Iterator[None]:
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def _expired(line: bytes, before: datetime) -> bool:
    try:
        finished = datetime.fromisoformat(json.loads(line)["finished_at"])
    except (ValueError, KeyError, TypeError):
        return False  # no usable time: kept
    if finished.tzinfo is None:
        finished = finished.replace(tzinfo=UTC)
    return finished < before


def _link_archive(path: Path, state_dir: Path, now: datetime) -> Path:
    """The old manifest by a second name before it is replaced: dated, and numbered when a
    compaction of the same second kept one already."""
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for number in range(1000):
        archived = state_dir / (f"manifest-{stamp}.jsonl" if number == 0 else
                                f"manifest-{stamp}-{number}.jsonl")  # fmt: skip
        try:
            os.link(path, archived)
        except FileExistsError:
            continue
        return archived
    raise FileExistsError(f"{state_dir}: no free archive name for {stamp}")


def compact(
    state_dir: Path,
    present: Callable[[], Container[str]],
    archive: bool = False,
    retain_days: float | None = None,
    now: datetime | None = None,
) -> Compaction:
    """Compact `state_dir`'s manifest; `present()` lists the source (called under the lock)."""
    path, lock_path = state_dir / "manifest.jsonl", state_dir / "manifest.lock"
    now = now or datetime.now(UTC)
    lock_fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o664)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        with open(path, "rb") as handle:
            keep, records, bad = _standing(handle)
            kept = set(keep.values())
            there = present() if retain_days is not None else ()
            before = now - timedelta(days=retain_days or 0)
            temp = state_dir / f".manifest.jsonl.{os.getpid()}.compact"
            written = expired = 0
            with _removed_on_failure(temp), open(temp, "wb") as out:
                batch: list[bytes] = []
                for index, line in enumerate(_lines(handle)):
                    if index not in kept:
                        continue
                    if retain_days is not None:
                        name = parse_head(line)
                        if name and name[0] not in there and _expired(line, before):
                            expired += 1
                            continue
                    batch.append(line)
                    if len(batch) >= 50_000:
                        out.write(b"\n".join(batch) + b"\n")
                        written += len(batch)
                        batch.clear()
                if batch:
                    out.write(b"\n".join(batch) + b"\n")
                    written += len(batch)
                out.flush()
                os.fsync(out.fileno())
                size_after = out.tell()
            size_before = os.fstat(handle.fileno()).st_size
        archived = None
        with _removed_on_failure(temp):
            if archive:
                archived = _link_archive(path, state_dir, now)
            os.replace(temp, path)
        dir_fd = os.open(state_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself is durable
        finally:
            os.close(dir_fd)
    finally:
        os.close(lock_fd)  # drops the lock
    return Compaction(records, written, bad, expired, size_before, size_after, archived)
