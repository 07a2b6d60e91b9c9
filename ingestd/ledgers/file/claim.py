"""The claim: a non-blocking `flock` on `STATE/locks/NAME.lock`, one lock file per data file.

Why each step is there:
- `O_RDWR|O_CREAT|O_NOFOLLOW`, no `O_TRUNC`: the file may be a peer's live claim, and its
  content (the owner and attempt count) must survive until we hold the lock; a symlink planted
  in the locks directory is never followed.
- `LOCK_EX|LOCK_NB`: a busy lock means a peer owns the file; we move on instead of queueing
  behind it (the peer may hold it for half an hour).
- inode re-check after locking: the owner unlinks the lock file after committing. Had we opened
  the path before that unlink, we now hold a lock on a file no one else can find, while a third
  worker creates a fresh one. Holding a lock that is not the one at the path means nothing.
- The owner record is read and written through the claim's own descriptor: on NFS, flock is a
  POSIX lock, and closing *any* descriptor of the file would silently drop it.
- Lock files are not data files: the kernel drops the lock of a dead process (on NFS, the server
  does when the client's lease expires), and the lock file stays behind with the attempt count.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import json
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ingestd.contracts.ledger import Busy, Owner, Unusable

__all__ = ["Busy", "Claim", "Unusable", "lock_names", "parse_owner", "probe", "try_claim"]

_BUSY = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES})
_OWNER_MAX = 64 * 1024
# Unusable: something that is not a lock file sits at the lock path (a symlink, a directory).
# Never followed, never removed (someone put it there): the file cannot be claimed until an
# operator looks, and `ingestd status` names it.


@dataclass
class Claim:
    """A held claim. The lock lives as long as `fd` is open."""

    name: str
    path: Path
    fd: int
    previous: bytes  # owner record left by the last holder (a dead worker), or b""
    attempt: int = 0
    lost: int = 0  # times the lock was won on an inode no longer at the path (started over)
    fresh: bool = False  # the manifest is read by `sync`, not by a claim
    # finish/abandon/release may race (a cancelled task gives back a claim whose finish is
    # still running in a thread): the first one wins, the others do nothing. Acting on a
    # closed descriptor number could touch whatever file reused it.
    _mutex: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _closed: bool = False

    @property
    def previous_owner(self) -> Owner | None:
        return parse_owner(self.previous)

    def begin(self, owner: Owner) -> int:
        """Record us as the owner with the next attempt number; return that number."""
        before = self.previous_owner
        self.attempt = before.attempt + 1 if before else 1
        self._write(dataclasses.replace(owner, attempt=self.attempt).to_json() + b"\n")
        return self.attempt

    def finish(self) -> None:
        """The file is recorded: remove the lock file, then release the lock."""
        with self._mutex:
            if not self._closed:
                self._unlink_and_close()

    def abandon(self) -> None:
        """Give the file back without spending an attempt (shutdown, infrastructure errors).

        The previous owner record is put back, so the next claimer counts attempts as if we
        had never started; a lock file we created is removed.
        """
        with self._mutex:
            if self._closed:
                return
            if not self.previous:
                self._unlink_and_close()
                return
            try:
                self._write(self.previous)
            finally:
                self._close()

    def release(self, error: str | None = None) -> None:
        """Give the file back and keep our owner record: the attempt counts (handler crash).

        `error` is kept in the owner record, so the next holder (and a poison record) can say
        why the attempt ended.
        """
        with self._mutex:
            if self._closed:
                return
            try:
                if error is not None:
                    owner = _owner_dict(os.pread(self.fd, _OWNER_MAX, 0)) or {}
                    self._write(json.dumps({**owner, "error": error[:2000]}).encode())
            finally:
                self._close()

    def restore(self) -> None:
        """Put the previous owner record back but keep holding the lock.

        For a file whose handler cannot be stopped (a thread) when the process is about to
        end: the kernel releases the lock at exit, the handler dies with the process, and the
        next holder counts attempts as if this one had never started.
        """
        with self._mutex:
            if not self._closed:
                self._write(self.previous if self.previous else b"\n")

    def reassert(self) -> bool:
        """Whether we still hold the lock file at our path, taking it again if it is gone.

        The state dir removed under a running fleet (`rm -rf DIR/.ingestd`) takes our lock
        file's path with it: a peer would then create a fresh one and claim the file while we
        still work on it. So a holder checks its path often; when it no longer names our
        inode, it creates the lock file again and locks it (keeping our owner record), before
        the peer that recreated the state dir may claim anything (`RECREATE_GRACE`). False:
        a peer holds the path's lock now; we can no longer prove the file is ours.
        """
        with self._mutex:
            if self._closed:
                return True
            try:
                held = os.fstat(self.fd)
                current = os.stat(self.path, follow_symlinks=False)
                if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                    return True
            except FileNotFoundError:
                pass
            # locks/ and the state dir, never the state dir's parents: if the data dir is
            # gone (a mount away), nobody can make a lock file there, and neither do we.
            for directory in (self.path.parent.parent, self.path.parent):
                try:
                    os.mkdir(directory, 0o775)
                except FileExistsError:
                    continue
                except OSError:
                    return True
            try:
                fd = os.open(
                    self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o664
                )
            except OSError:
                return False
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            record = os.pread(self.fd, _OWNER_MAX, 0)
            os.pwrite(fd, record.split(b"\n", 1)[0] + b"\n", 0)
            os.close(self.fd)  # the old inode: unreachable, nobody can lock it now
            self.fd = fd
            self.lost += 1
            return True

    def _close(self) -> None:
        self._closed = True
        os.close(self.fd)

    def _write(self, data: bytes) -> None:
        # Overwrite in place, no ftruncate: the record is its first line, so a longer old one
        # leaves only ignored bytes after it. (ext4 flushes a file truncated to zero and then
        # rewritten at close: one needless disk write per claim.)
        os.pwrite(self.fd, data.split(b"\n", 1)[0] + b"\n", 0)

    def _unlink_and_close(self) -> None:
        try:
            # Unlink while still holding the lock: a peer that opened this inode in the
            # meantime will see the path gone (or a new inode) and start over. Only our own
            # inode is removed: if our claim was lost (an NFS lease expired), the path may
            # already name a peer's live lock file.
            held = os.fstat(self.fd)
            current = os.stat(self.path, follow_symlinks=False)
            if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                os.unlink(self.path)
        except FileNotFoundError:
            pass
        finally:
            self._close()


def _owner_dict(data: bytes) -> dict[str, object] | None:
    """The owner record as written: the first line of a lock file (bytes after it are stale)."""
    line = data.split(b"\n", 1)[0]
    if not line.strip():
        return None
    try:
        owner = json.loads(line)
    except ValueError:
        return None
    return owner if isinstance(owner, dict) else None


def parse_owner(data: bytes) -> Owner | None:
    """The owner a lock file names, or None (empty, or not one of ours)."""
    found = _owner_dict(data)
    return None if found is None else Owner.parse(found)


def lock_path(locks_dir: Path, name: str) -> Path:
    return locks_dir / f"{name}.lock"


def unusable_lock_paths(locks_dir: Path) -> list[str]:
    """Entries of the locks dir that are not regular files (symlinks, directories, FIFOs)."""
    found = []
    try:
        with os.scandir(locks_dir) as entries:
            for entry in entries:
                if entry.name.endswith(".lock") and not entry.is_file(follow_symlinks=False):
                    found.append(entry.name)
    except OSError:
        return []
    return sorted(found)


def lock_names(locks_dir: Path) -> list[str]:
    """Names of the data files that have a lock file (held, or left behind)."""
    try:
        return [n.removesuffix(".lock") for n in os.listdir(locks_dir) if n.endswith(".lock")]
    except OSError:
        return []  # no locks dir (yet), or unreadable: nothing to clean up now


def try_claim(locks_dir: Path, name: str, *, retries: int = 16) -> Claim:
    """Claim `name` or raise `Busy`. Blocking (filesystem calls): run it in a thread."""
    path = lock_path(locks_dir, name)
    for lost in range(retries):
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o664)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.EISDIR):
                raise Unusable(f"{path} is not a lock file (a symlink or a directory)") from None
            if exc.errno == errno.ENOENT and os.path.isdir(locks_dir):
                # On NFS the create can fail this way when a peer unlinks the lock file
                # between the client's lookup and its create: the same case as a replaced
                # inode, start over.
                continue
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise Unusable(f"{path} is not a regular file")
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in _BUSY:
                raise Busy(name) from None
            raise
        except BaseException:
            os.close(fd)
            raise
        try:
            held = os.fstat(fd)
            current = os.stat(path, follow_symlinks=False)
        except FileNotFoundError:
            os.close(fd)  # unlinked by its owner after we opened it: start over
            continue
        except BaseException:
            os.close(fd)
            raise
        if (held.st_dev, held.st_ino) != (current.st_dev, current.st_ino):
            os.close(fd)
            continue
        try:
            previous = os.pread(fd, _OWNER_MAX, 0)
        except BaseException:
            os.close(fd)
            raise
        return Claim(name=name, path=path, fd=fd, previous=previous, lost=lost)
    # Losing the unlink race this many times in a row means heavy churn on this very name:
    # treat it as busy and let the next scan offer it again.
    raise Busy(name)


def probe(path: Path) -> tuple[bool, Owner | None]:
    """(held by someone, owner record) of one lock file, without taking it from anyone.

    Opens read-only and asks for a shared lock without waiting: if it is granted, no one holds
    the claim (it is dropped at once); if not, the owner is alive.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        owner = parse_owner(os.pread(fd, _OWNER_MAX, 0))
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _BUSY:
                return True, owner
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, owner
    finally:
        os.close(fd)
