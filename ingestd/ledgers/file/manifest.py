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

from ingestd.contracts.ledger import (
    DONE,
    FAILED,
    FINISHED,
    REDO,
    RETRY,
    Stored,
    Summary,
    SummaryBlock,
)
from ingestd.ledgers.grouping import GroupCommit, Pending

__all__ = ["DONE", "FAILED", "FINISHED", "RETRY", "Manifest", "encode", "read_records"]

_CHUNK = 1 << 20
_FAST_PREFIX = b'{"file":"'
_FAST_STATUS = b',"status":"'
# Whole lines as `encode` writes them, for reading blocks of a million lines in one pass: the
# name and status `parse_head` would slice; the audit's fields `summary_of` would.
_HEAD_LINES = re.compile(r'^\{"file":"([^"\\\n]*)","status":"([a-z]+)"[^\n]*\}$', re.M)
_FAILED_LINES = re.compile(r'^\{"file":"([^"\\\n]*)","status":"failed"[^\n]*\}$', re.M)
_SUMMARY_LINES = re.compile(
    r'^\{"file":"([^"\\\n]*)","status":"([a-z]+)","worker":"([^"\\\n]*)",'
    r'"host":(?:"[^"\\\n]*"|null),"pid":(?:-?\d+|null),"attempt":(-?\d+|null),'
    r'"minutes":(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?|null),'
    # Greedy: `finished_at` is written last, so the match backs off a few characters only
    # (a key appears once in an object, so first and last are the same).
    # Quotes kept in the group: `findall` says "" for a group that did not take part.
    r'(?:[^\n]*"finished_at":("[^"\\\n]*"))?[^\n]*\}$',
    re.M,
)

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
    (a million records), read a block of columns at a time (`read_summary_blocks`)."""
    for block in read_summary_blocks(path, on_bad):
        yield from block.summaries()


def read_summary_blocks(path: Path, on_bad: BadLine | None = None) -> Iterator[SummaryBlock]:
    """`summary_of` every line, column by column, a block of the file at a time: a block whose
    every line `encode` wrote becomes its columns in one regex pass, without an object per
    record; any other block is read line by line."""
    for block, base in _blocks_at(path):
        fast = _fast_columns(block)
        if fast is not None:
            yield fast
            continue
        summaries = []
        for line, offset in _lines_in(block, base):
            summary = summary_of(line)
            if summary is not None:
                summaries.append(summary)
            elif on_bad is not None:
                on_bad(offset, line)
        yield SummaryBlock.of(summaries)


def _fast_columns(block: bytes) -> SummaryBlock | None:
    """Every line's summary as columns when each line of `block` is one `encode` wrote, else
    None."""
    if not block.isascii():
        return None
    found = _SUMMARY_LINES.findall(block.decode("ascii"))  # tuples of str, made in C
    if len(found) != block.count(b"\n"):
        return None
    if not found:
        return SummaryBlock.of([])
    files, statuses, workers, attempts, minutes, finished = zip(*found, strict=True)
    return SummaryBlock(
        list(files),
        list(statuses),
        list(workers),
        list(map(int, attempts)) if "null" not in attempts else
        [None if a == "null" else int(a) for a in attempts],
        list(map(float, minutes)) if "null" not in minutes else
        [None if m == "null" else float(m) for m in minutes],
        [f[1:-1] if f else None for f in finished],  # "": no finished_at
    )  # fmt: skip


def _blocks_at(path: Path) -> Iterator[tuple[bytes, int]]:
    """The manifest in blocks of complete lines (each ending with its newline), with their
    byte offsets (a torn tail is left out; a missing file has none). Streams: never the whole
    file in memory."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - a missing manifest is an empty one
    except FileNotFoundError:
        return
    with handle:
        offset = 0
        carry = b""
        while chunk := handle.read(_CHUNK * 8):
            buffer = carry + chunk
            used = buffer.rfind(b"\n") + 1
            if used:
                yield buffer[:used], offset
            offset += used
            carry = buffer[used:]


def _lines_in(block: bytes, base: int) -> Iterator[tuple[bytes, int]]:
    """The non-blank lines of a block with their offsets."""
    for line in block[:-1].split(b"\n"):
        if line.strip():
            yield line, base
        base += len(line) + 1


def _lines_at(path: Path) -> Iterator[tuple[bytes, int]]:
    """Every complete, non-blank line of a manifest file with its byte offset."""
    for block, base in _blocks_at(path):
        yield from _lines_in(block, base)


def _lines_containing(path: Path, needle: bytes) -> Iterator[tuple[bytes, int]]:
    """The complete lines that contain `needle`, with their offsets: found by a search in C
    over each block, so the lines without it are never split apart (ten times quicker than
    `_lines_at` for one file's records in a million)."""
    for block, base in _blocks_at(path):
        at = block.find(needle)
        while at != -1:
            start = block.rfind(b"\n", 0, at) + 1
            end = block.find(b"\n", at)
            yield block[start:end], base + start
            at = block.find(needle, end + 1)


def fold_block(status: dict[str, str], block: bytes) -> bool:
    """Fold a block of complete lines into `status` when every line is one `encode` wrote:
    the (name, status) pairs come out of one regex pass in C. False, and nothing done, when
    any line is not (the caller reads that block line by line)."""
    if not block.isascii():
        return False
    heads = _HEAD_LINES.findall(block.decode("ascii"))
    if len(heads) != block.count(b"\n"):
        return False
    statuses = _STATUSES
    fresh = {name: statuses.get(state, state) for name, state in heads}
    if len(fresh) < len(heads):  # a name twice in the block: in order, one by one
        for name, state in heads:
            if status.get(name) != DONE or state == REDO:
                status[name] = statuses.get(state, state)
        return True
    # Each name once: only one already done may keep its status (done wins over a later
    # record but a redo); the rest go in with one update, in C.
    for name in fresh.keys() & status.keys():
        if status[name] == DONE and fresh[name] != REDO:
            fresh[name] = DONE
    status.update(fresh)
    return True


def standing_failed_records(path: Path) -> dict[str, dict[str, Any]]:
    """Each file failed and not retried or done since, with its record: the fast path reads
    only `file` and `status` of every line, and parses the few failed lines whole.

    A file whose final status is failed was failed by its last failed line (a failed line
    after a done one is ignored, and only a redo, itself later, lets a failure count again)."""
    status: dict[str, str] = {}
    failed: dict[str, bytes] = {}
    for block, base in _blocks_at(path):
        if fold_block(status, block):
            if b'"status":"failed"' in block:
                text = block.decode("ascii")
                failed.update((m[1], m[0].encode()) for m in _FAILED_LINES.finditer(text))
            continue
        _fold_lines(status, failed, block, base)
    found = {}
    for name, line in failed.items():
        if status.get(name) != FAILED:
            continue
        record = parse_record(line)
        if record is not None:
            found[name] = record
    return found


def _fold_lines(status: dict[str, str], failed: dict[str, bytes], block: bytes, base: int) -> None:
    for line, _ in _lines_in(block, base):
        head = parse_head(line)
        if head is None:
            continue
        name, state = head
        if status.get(name) == DONE and state != REDO:
            continue
        status[name] = _intern_status(state)
        if state == FAILED:
            failed[name] = line


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


@dataclass(eq=False)
class _Entry:
    """One record to append, and its hooks (see `Manifest.commit`)."""

    line: bytes
    file: str
    status: str
    on_written: Callable[[], None] | None
    before_append: Callable[[], None] | None


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
    # Orders this process's writers (its threads share one `flock` descriptor, so the flock
    # cannot tell them apart), and lets records queued behind a write share the next one.
    _group: GroupCommit[_Entry] = field(init=False)

    def __post_init__(self) -> None:
        self._group = GroupCommit(self._commit_batch)

    def close(self) -> None:
        with self._group.holding(), self._mutex:
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
        raises, nothing is appended). `on_written()` runs once the record is durable, under
        the lock, in record order.

        Group commit: records of this process's threads that arrive while another commit
        holds the lock are written by the next holder in one append and one fsync, each
        fenced and reported on its own.
        """
        entry = _Entry(encode(record), record["file"], record["status"], on_written,
                       before_append)  # fmt: skip
        return self._group.commit(entry)

    def _commit_batch(self, batch: list[Pending[_Entry]]) -> None:
        """Fence, append and fsync `batch` under the manifest lock, and settle each record.
        An error of the batch's own (the lock, the append, the fsync) is raised: it settles
        every record not yet settled, and each caller raises it."""
        if self._lock_fd is None:
            flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW
            self._lock_fd = os.open(self.lock_path, flags, 0o664)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self.refresh()
            taken = self._fenced(batch)
            if taken:
                _append(self.path, b"".join(p.item.line for p in taken))
                self.refresh()
            for pending in taken:
                pending.settle_written(pending.item.on_written)
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _fenced(self, batch: list[Pending[_Entry]]) -> list[Pending[_Entry]]:
        """The records of `batch` to append: a file already done (or done earlier in the
        batch) is refused unless the record is an operator's redo; a record whose
        `before_append` fails is settled with that failure, the others go on."""
        taken: list[Pending[_Entry]] = []
        done_now: set[str] = set()
        for pending in batch:
            entry = pending.item
            already = self.status.get(entry.file) == DONE or entry.file in done_now
            if already and entry.status != REDO:
                pending.settle(written=False)
                continue
            if entry.before_append is not None:
                try:
                    entry.before_append()
                except BaseException as exc:  # this record's failure, not the batch's
                    pending.settle(error=exc)
                    continue
            taken.append(pending)
            if entry.status == DONE:
                done_now.add(entry.file)
            elif entry.status == REDO:
                done_now.discard(entry.file)
        return taken

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
            used = chunk.rfind(b"\n") + 1
            if used == 0:
                if len(chunk) < _CHUNK * 8:
                    break  # only a torn (or still-being-written) tail is left
                raise OSError(f"manifest line at offset {self._offset} is over 8 MiB")
            if not self._apply_fast(chunk[:used]):
                self._apply(split_complete(chunk)[0], self._offset)
            self._offset += used

    def _apply_fast(self, block: bytes) -> bool:
        """`fold_block` into this reader's statuses (a start-up or a `status` reads a million
        lines); False, and nothing done, when a line is not one `encode` wrote."""
        return fold_block(self.status, block)

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
