"""The source: where files come from, behind one small interface.

A `Source` lists the data files it has with a signature (size and mtime, or an ETag) that
tells whether a file is still being written and whether it changed; it may push events for a
quick notice; it opens a file's content as a stream for the handler. `atomic` says whether its
files appear whole (a bucket: no settling) or may be seen half-written (a directory: settle
as docs/concepts/assumptions.md says). Names are filtered and ordered by `naming.py` beside this
module, whatever the source.

`ingestd/sources/` holds the kinds: a directory (watchdog events plus scans), a bucket, and
memory (files in a dict, for tests).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

from structlog.typing import FilteringBoundLogger as Log

Signature = tuple[int, int]  # (size, mtime_ns) or (size, hash of an ETag): equal = unchanged

# (kind, name): kind is "written" (closed after write, or moved into place) or "changed".
EventCallback = Callable[[str, str], None]

TEMP_FILE = "temp file"  # why a writer's temp file is ignored: not worth an info line


@dataclass
class ScanResult:
    candidates: dict[str, Signature] = field(default_factory=dict)
    ignored: dict[str, str] = field(default_factory=dict)  # name -> why
    # Finished files whose signature changed since an earlier scan (a bucket has no events):
    # discovery compares their content with the record (`file_changed_after_done`).
    changed: list[str] = field(default_factory=list)


KEEP, DELETE, MOVE = "keep", "delete", "move"


@dataclass(frozen=True)
class Content:
    """The content a record names: the source's version seen at claim (a directory's inode,
    size and mtime; a bucket's ETag) and the sha256 of what was processed. Either may be
    missing in a record from an older release."""

    version: str | None = None
    sha256: str | None = None


class Changed(Exception):
    """The source no longer holds the content that was processed: a re-delivery or an
    overwrite. Nothing was moved or deleted."""

    def __init__(self, name: str, version: str | None, sha256: str | None) -> None:
        super().__init__(f"{name}: the source holds other content now")
        self.version = version  # what the source holds now
        self.sha256 = sha256  # its digest, when it was read to tell


@dataclass(frozen=True)
class Disposal:
    """What happens to a source file once its record is durable: `--on-done`/`--on-failed`.

    `move:TARGET` keeps the name; a relative TARGET is inside the source (DIR/TARGET, or
    PREFIX/TARGET in a bucket), an absolute one is a directory of its own.
    """

    kind: str = KEEP
    target: str = ""

    @classmethod
    def parse(cls, text: str) -> Disposal:
        if text in (KEEP, DELETE):
            return cls(text)
        kind, _, target = text.partition(":")
        if kind != MOVE or not target.strip("/"):
            raise ValueError(f"{text!r}: choose keep, delete or move:DIR")
        return cls(MOVE, target)

    def __str__(self) -> str:
        return f"{MOVE}:{self.target}" if self.kind == MOVE else self.kind


def check_content(
    name: str, processed: Content, version: str | None, digest: Callable[[], tuple[int, str]]
) -> None:
    """`Changed` unless the source still holds what was processed: the same version, or
    other bytes of the same sha256 (the same file delivered again). A record from before
    versions and digests (neither known) is taken as it was."""
    if processed.version is not None and processed.version == version:
        return
    if processed.version is None and processed.sha256 is None:
        return
    sha256 = digest()[1]
    if sha256 != processed.sha256:
        raise Changed(name, version, sha256)


def aside_name(name: str) -> str:
    """A unique name beside `name` for a file that must not replace it."""
    return f"{name}.{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


class Watch(Protocol):
    """An event stream the daemon supervises (the local source's watchdog observer)."""

    def start(self) -> bool: ...

    def ensure_alive(self) -> None: ...

    def restart(self) -> None: ...

    def stop(self) -> None: ...


class Source(Protocol):
    """Where files come from. Methods other than `watch` block: call them in a thread."""

    description: str  # for logs: the directory or bucket
    atomic: bool  # files appear whole: no settling needed

    def exists(self) -> bool:
        """Whether the source is there at all (a directory may be an NFS mount to come)."""

    def scan(self, skip: Callable[[str], bool]) -> ScanResult:
        """Every data file not `skip`ped, with its signature; what was ignored and why."""

    def names(self) -> set[str]:
        """The data-file names present now, finished or not: a listing with no side effects
        (`--publish-in-order` lists the source itself, at a moment of its own choosing)."""

    def signature(self, name: str) -> Signature | None:
        """One file's signature; None if it is gone or not a regular file."""

    def open(self, name: str) -> BinaryIO:
        """The content as a stream. FileNotFoundError: gone; PermissionError: unreadable;
        `BadInput`: not a regular file."""

    def read_head(self, name: str, limit: int) -> bytes:
        """Up to `limit + 1` bytes from the start (errors as `open`)."""

    def read_start(self, name: str, limit: int) -> tuple[bytes, str | None]:
        """`read_head`, and the version of the content it read (taken before the read, or
        from the same response): what a claim records and disposal compares."""

    def digest(self, name: str) -> tuple[int, str]:
        """(size, sha256) of the content as it is now."""

    def version(self, name: str) -> str | None:
        """A token that changes whenever the content may have: taken before the content is
        read, recorded, and compared before a disposal. None if the file is gone."""

    def versions(self) -> dict[str, str]:
        """Every data file's version, in one listing (for `status`)."""

    def dispose(self, name: str, disposal: Disposal, processed: Content) -> None:
        """Delete or move a finished file (not `keep`), only while it still holds the content
        `processed` names (the same version, or else the same sha256); `Changed` if not.
        Never replaces anything: a move whose target name is taken puts the file beside it
        under a unique name. Idempotent: a file already gone is FileNotFoundError, which
        callers ignore (a peer did it)."""

    def watch(
        self, loop: asyncio.AbstractEventLoop, on_event: EventCallback, log: Log
    ) -> Watch | None:
        """An event stream for quick notice, or None (scans only)."""

    def watch_appearance(
        self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]
    ) -> Watch | None:
        """While the source does not exist: a stream that calls `wake` when it may have
        appeared (then look again, and `restart` it if not yet), or None (poll only)."""

    def is_closed(self, name: str) -> bool | None:
        """True when no process has the file open for writing right now (it was closed after
        writing, as a close event would have said); False when one has; None: cannot tell."""

    def clock(self) -> int | None:
        """The source's own clock now, in the unit of its signatures' mtimes (ns), or None:
        a file unchanged since longer than the settle time needs no settling."""
