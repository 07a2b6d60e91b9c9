"""The watermark of `--publish-in-order` as a file: `OUT/_watermark` (temp file, fsync, rename)
under an exclusive `flock` on `OUT/.staging/.lock`, which a dead worker's kernel (or the NFS
server's lease) releases. The same locking the claim files rely on, so it lives beside them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from ingestd.core.publishing.plan import Marks
from ingestd.core.publishing.publisher import STAGING, fsync_dir

WATERMARK = "_watermark"
_LOCK = ".lock"
LOCK_TIMEOUT = 10.0  # seconds a pass waits for a peer's before it gives up (tried again later)


def read_marks(out_dir: Path) -> Marks:
    """The watermark file's content; empty marks when there is none yet. ValueError: it is
    not one this version wrote (a person must look: publishing on would forget the order)."""
    try:
        data = (out_dir / WATERMARK).read_bytes()
    except FileNotFoundError:
        return Marks()
    try:
        return Marks.parse(data)
    except ValueError as exc:
        raise ValueError(f"{out_dir / WATERMARK}: {exc}") from None


class FileMarks:
    """The watermark as `OUT/_watermark`, passes serialised by a `flock`."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.staging = out_dir / STAGING
        self.description = str(out_dir / WATERMARK)

    def prepare(self) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)

    def read(self) -> Marks:
        return read_marks(self.out_dir)

    def write(self, marks: Marks) -> None:
        temp = self.staging / f".{WATERMARK}.{secrets.token_hex(8)}.tmp"
        try:
            with open(temp, "xb") as out:
                out.write(marks.to_json(datetime.now(UTC).isoformat(timespec="microseconds")))
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, self.out_dir / WATERMARK)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(self.out_dir)

    def _remove_temp_files(self) -> None:
        """Under the lock, a watermark temp file is a killed pass's: nobody else writes one."""
        with os.scandir(self.staging) as entries:
            for entry in entries:
                if entry.name.startswith(f".{WATERMARK}."):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """The fleet's publishing lock. A pass takes milliseconds, so a peer's is waited for;
        but never for ever (a stopped peer, a hung mount): the thread must end, or the
        process could not."""
        fd = os.open(self.staging / _LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o664)
        try:
            deadline = time.monotonic() + LOCK_TIMEOUT
            pause = 0.002
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(
                            f"{self.staging / _LOCK} held by a peer for {LOCK_TIMEOUT:g} s"
                        ) from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.05)
            self._remove_temp_files()
            yield
        finally:
            os.close(fd)
