"""The done-manifest: an append-only JSON Lines file of finished files, shared by all workers.

Writers append one line per record while holding `flock` on a separate `manifest.lock` (never
on the data file: on NFS a lock is a POSIX lock, and closing any descriptor of the locked file
would drop it), then `fsync`. Nothing is ever rewritten in place.

Readers keep their byte offset and read only the new tail. A torn last line (its writer was
killed mid-write) is left unread until it is complete; the next writer closes it with a
newline, after which readers skip it as one bad line with one warning.

Replacing the manifest (renaming it away, a compaction's atomic rename) is noticed by inode:
readers reopen the path and read the new file from its start, keeping everything they already
knew finished. A worker that starts later knows only what the new file holds, so a manifest
is never rotated away, only compacted (one record per file kept).

Statuses: `done` and `failed` finish a file; `retry` (written by `ingestd retry`) makes a
failed file eligible again. A `done` record is final.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestd.contracts.ledger import DONE, FAILED, FINISHED, REDO, RETRY, Stored, Summary

__all__ = ["DONE", "FAILED", "FINISHED", "RETRY", "Manifest", "encode", "read_records"]

_CHUNK = 1 << 20
_FAST_PREFIX = b'{"file":"'
_FAST_STATUS = b',"status":"'

BadLine = Callable[[int, bytes], None]


def encode(record: dict[str, Any]) -> bytes:
    """One manifest line. `file` and `status` lead so readers can take a fast path."""
    ordered = {"file": record["file"], "status": record["status"], **record}
    return json.dumps(ordered, separators=(",", ":"), ensure_ascii=True).encode() + b"\n"


def parse_head(line: bytes) -> tuple[str, str] | None:
    """(file, status) of one complete line, or None if it is not a usable record.

    Lines this module wrote start `{"file":"NAME","status":"STATUS"`; valid names hold no
    quote or backslash, so the two fields are sliced without decoding the whole object.
    Anything else goes through the JSON parser.
    """
    if line.startswith(_FAST_PREFIX) and line.endswith(b"}"):
        end = line.find(b'"', len(_FAST_PREFIX))
        name = line[len(_FAST_PREFIX) : end]
        if end > 0 and b"\\" not in name and line.startswith(_FAST_STATUS, end + 1):
            start = end + 1 + len(_FAST_STATUS)
            stop = line.find(b'"', start)
            if stop > 0:
                return name.decode("ascii", "replace"), line[start:stop].decode("ascii", "replace")
    record = parse_record(line)
    if record is None:
        return None
    return record["file"], record["status"]


def parse_record(line: bytes) -> dict[str, Any] | None:
    """The full record of one complete line, or None for garbage."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("file"), str)
        or not isinstance(record.get("status"), str)
    ):
        return None
    return record


def split_complete(buffer: bytes) -> tuple[list[bytes], int]:
    """The complete lines in `buffer` and how many bytes they span (a torn tail is left)."""
    end = buffer.rfind(b"\n")
    if end < 0:
        return [], 0
    return buffer[:end].split(b"\n"), end + 1


# What `encode` writes first, in its order: an audit's fields sliced without a JSON parse.
_SUMMARY = re.compile(
    rb'\{"file":"([^"\\]*)","status":"([a-z]+)","worker":"([^"\\]*)","host":(?:"[^"\\]*"|null),'
    rb'"pid":(?:-?\d+|null),"attempt":(-?\d+|null),"minutes":([-+0-9.eE]+|null),'
)
_FINISHED = b'"finished_at":"'


def summary_of(line: bytes) -> Summary | None:
    """What an audit reads of one complete line (None for garbage): sliced from the line
    when `encode` wrote it, else from the JSON parser."""
    match = _SUMMARY.match(line)
    if match is None or not line.endswith(b"}"):
        record = parse_record(line)
        stored = None if record is None else Stored.from_dict(record)
        return None if stored is None else Summary.of(stored)
    name, status, worker, attempt, minutes = match.groups()
    finished = None
    start = line.find(_FINISHED, match.end())
    if start >= 0:
        start += len(_FINISHED)
        end = line.find(b'"', start)
        if end > 0 and b"\\" not in line[start:end]:
            finished = line[start:end].decode("ascii", "replace")
    return Summary(
        name.decode("ascii", "replace"),
        _intern_status(status.decode("ascii")),
        worker.decode("utf-8", "replace"),
        None if attempt == b"null" else int(attempt),
        None if minutes == b"null" else float(minutes),
        finished,
    )


def read_summaries(path: Path, on_bad: BadLine | None = None) -> Iterator[Summary]:
    """`summary_of` every line, in order: what an audit needs, at a fraction of a full parse
    (a million records)."""
    for line, offset in _lines_at(path):
        summary = summary_of(line)
        if summary is not None:
            yield summary
        elif on_bad is not None:
            on_bad(offset, line)


def _lines_at(path: Path) -> Iterator[tuple[bytes, int]]:
    """Every complete, non-blank line of a manifest file with its byte offset (a torn tail
    is left out; a missing file has none). Streams: never the whole file in memory."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - a missing manifest is an empty one
    except FileNotFoundError:
        return
    with handle:
        offset = 0
        carry = b""
        while chunk := handle.read(_CHUNK):
            buffer = carry + chunk
            lines, used = split_complete(buffer)
            base = offset
            for line in lines:
                if line.strip():
                    yield line, base
                base += len(line) + 1
            offset += used
            carry = buffer[used:]


def _lines_containing(path: Path, needle: bytes) -> Iterator[tuple[bytes, int]]:
    """The complete lines that contain `needle`, with their offsets: found by a search in C
    over each chunk, so the lines without it are never split apart (ten times quicker than
    `_lines_at` for one file's records in a million)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - a missing manifest is an empty one
    except FileNotFoundError:
        return
    with handle:
        offset, carry = 0, b""
        while chunk := handle.read(_CHUNK * 8):
            buffer = carry + chunk
            used = buffer.rfind(b"\n") + 1  # complete lines only: a torn tail waits
            at = buffer.find(needle, 0, used)
            while at != -1:
                start = buffer.rfind(b"\n", 0, at) + 1
                end = buffer.find(b"\n", at)
                yield buffer[start:end], offset + start
                at = buffer.find(needle, end + 1, used)
            offset += used
            carry = buffer[used:]


def standing_failed_records(path: Path) -> dict[str, dict[str, Any]]:
    """Each file failed and not retried or done since, with its record: the fast path reads
    only `file` and `status` of every line, and parses the few failed lines whole."""
    status: dict[str, str] = {}
    failed: dict[str, bytes] = {}
    for line, _ in _lines_at(path):
        head = parse_head(line)
        if head is None:
            continue
        name, state = head
        if status.get(name) == DONE and state != REDO:
            continue
        status[name] = _intern_status(state)
        if state == FAILED:
            failed[name] = line
        else:
            failed.pop(name, None)
    found = {}
    for name, line in failed.items():
        record = parse_record(line)
        if record is not None:
            found[name] = record
    return found


def read_records(
    path: Path, on_bad: BadLine | None = None, lines_with: bytes | None = None
) -> Iterator[dict[str, Any]]:
    """Every complete, well-formed record of a manifest file, in order (for audits).

    `lines_with` skips, unparsed, every line that does not contain those bytes.
    """
    lines = _lines_at(path) if lines_with is None else _lines_containing(path, lines_with)
    for line, offset in lines:
        record = parse_record(line)
        if record is not None:
            yield record
        elif on_bad is not None:
            on_bad(offset, line)


@dataclass
class Manifest:
    """One process's view of the manifest: incremental reader plus fenced appender.

    Thread-safe: blocking calls run in worker threads, several claim tasks share one instance.
    Two mutexes, because a commit holds its lock through an fsync (milliseconds on a disk, a
    round trip on NFS) and the next claim's `refresh` must not wait for it: `_mutex` guards
    the reader's state and is only ever held briefly; `_write_mutex` orders this process's
    writers (its threads share one `flock` descriptor, so the flock cannot tell them apart).
    """

    path: Path
    lock_path: Path
    on_bad_line: BadLine | None = None
    on_replaced: Callable[[], None] | None = None
    status: dict[str, str] = field(default_factory=dict)
    bad_lines: int = 0
    replaced: int = 0  # times the path was found naming another file
    _offset: int = 0
    _read_fd: int | None = None
    _lock_fd: int | None = None
    _mutex: threading.Lock = field(default_factory=threading.Lock)
    _write_mutex: threading.Lock = field(default_factory=threading.Lock)

    def close(self) -> None:
        with self._write_mutex, self._mutex:
            for fd in (self._read_fd, self._lock_fd):
                if fd is not None:
                    os.close(fd)
            self._read_fd = self._lock_fd = None

    def last_record(self, name: str) -> dict[str, Any] | None:
        """The newest complete record for `name`: a full read of the file, for rare checks."""
        needle = json.dumps(name).encode()
        found = None
        for record in read_records(self.path, lines_with=needle):
            if record["file"] == name:
                found = record
        return found

    def is_finished(self, name: str) -> bool:
        return self.status.get(name) in FINISHED

    def refresh(self) -> None:
        """Read whatever other workers appended since the last call."""
        with self._mutex:
            self._read_tail()

    def commit(
        self,
        record: dict[str, Any],
        on_written: Callable[[], None] | None = None,
        before_append: Callable[[], None] | None = None,
    ) -> bool:
        """Append `record` durably unless the file is already done (fencing).

        Returns False (nothing written) when a `done` record for the file is already there:
        a peer finished it after our claim was lost. Raises OSError (disk full, read-only)
        with nothing recorded; the caller must not treat the file as finished. `before_append()`
        runs under the manifest lock after the fencing check, before the append (if it
        raises, nothing is appended).
        """
        line = encode(record)
        with self._write_mutex:
            if self._lock_fd is None:
                flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
                self._lock_fd = os.open(self.lock_path, flags, 0o664)
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                self.refresh()
                # An operator's redo is the one record that may follow a done one.
                if self.status.get(record["file"]) == DONE and record["status"] != REDO:
                    return False
                if before_append is not None:
                    before_append()
                _append(self.path, line)
                self.refresh()
                if on_written is not None:
                    on_written()
                return True
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    # ---- internals: called with _mutex held ----

    def _read_tail(self) -> None:
        try:
            current = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            current = None
        if self._read_fd is not None and current is not None:
            held = os.fstat(self._read_fd)
            if (held.st_dev, held.st_ino) != (current.st_dev, current.st_ino):
                # The path names another file now (rotated, compacted, restored): appends go
                # by path, so read that one from its start. First the rest of the old one,
                # still open here: records a peer wrote just before the switch must not be
                # missed. What this process knows to be finished stays finished: a replaced
                # manifest never makes a running worker redo a file.
                self._read_to_end(self._read_fd)
                os.close(self._read_fd)
                self._read_fd = None
                self._offset = 0
                self.replaced += 1
                if self.on_replaced is not None:
                    self.on_replaced()
        if self._read_fd is None:
            if current is None:
                return
            try:
                self._read_fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
            except FileNotFoundError:
                return
        self._read_to_end(self._read_fd)

    def _read_to_end(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size < self._offset:
            # Truncated in place: read it again from the start (finished stays finished).
            self._offset = 0
        while self._offset < size:
            chunk = os.pread(fd, min(_CHUNK * 8, size - self._offset), self._offset)
            if not chunk:
                break
            lines, used = split_complete(chunk)
            if used == 0:
                if len(chunk) < _CHUNK * 8:
                    break  # only a torn (or still-being-written) tail is left
                raise OSError(f"manifest line at offset {self._offset} is over 8 MiB")
            self._apply(lines, self._offset)
            self._offset += used

    def _apply(self, lines: list[bytes], base: int) -> None:
        status = self.status
        for line in lines:
            if line:
                head = parse_head(line)
                if head is None:
                    self.bad_lines += 1
                    if self.on_bad_line is not None:
                        self.on_bad_line(base, line)
                else:
                    # `ledger.fold_statuses`'s rule, inlined: this loop reads a million
                    # lines at start-up, and interns the status strings as it goes.
                    name, state = head
                    if status.get(name) != DONE or state == REDO:
                        status[name] = _intern_status(state)
            base += len(line) + 1


def _append(path: Path, line: bytes) -> None:
    """Append one line and fsync it; the caller holds the manifest lock."""
    # Opened anew for every append: on NFS, open() is what makes the client fetch the file's
    # current size (close-to-open consistency; the lock is on another file), and O_APPEND
    # writes at the size the client believes. Read-write, so the torn-line check reads
    # through the same descriptor.
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o664)
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # close a torn line left by a writer that died
        written = os.write(fd, line)
        if written != len(line):
            # A short write leaves a torn line; the next writer closes it.
            raise OSError(f"short write to manifest ({written} of {len(line)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)


def _intern_status(value: str) -> str:
    # A million records share a handful of status strings: keep one copy of each.
    return _STATUSES.get(value, value)


_STATUSES = {s: s for s in (DONE, FAILED, RETRY, REDO)}
