"""The `local` source: a directory on a local disk or an NFS mount.

Scans judge entries by `lstat`, so symlinks are never followed and FIFOs never opened; files
are opened with `O_NOFOLLOW | O_NONBLOCK` for the same reasons. A file may be seen while it is
still being written, so the source is not `atomic`: the daemon settles it first. The state dir,
when it lives inside the data dir, is hidden from scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import fcntl
import hashlib
import os
import secrets
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from ingestd.contracts.errors import BadInput, StartupError
from ingestd.contracts.naming import is_data_name
from ingestd.contracts.source import (
    DELETE,
    MOVE,
    TEMP_FILE,
    Content,
    Disposal,
    EventCallback,
    ScanResult,
    Signature,
    Source,
    aside_name,
    check_content,
)
from ingestd.runtime.logs import Log
from ingestd.runtime.settings import Settings
from ingestd.runtime.startup import probe_writable, unusable_dir
from ingestd.sources.watcher import AppearanceWatcher, Watcher


def is_temp_name(name: str) -> bool:
    """A hidden temp file, as writers that rename into place use (`.NAME.tmp`, `.NAME.x.tmp`)."""
    return name.startswith(".") and name.endswith(".tmp")


def scan(data_dir: Path, skip: Callable[[str], bool], hide: str | None) -> ScanResult:
    """One pass over `data_dir`: regular data files not `skip`ped, with size and mtime.

    Blocking: run it in a thread. `hide` is the state dir's name, when it lives inside.
    """
    result = ScanResult()
    with os.scandir(data_dir) as entries:
        for entry in entries:
            name = entry.name
            if name == hide:
                continue
            # Finished files first: in a big directory nearly every entry is one, and a dict
            # lookup is far cheaper than parsing the name.
            if skip(name):
                continue
            if not is_data_name(name):
                result.ignored[name] = TEMP_FILE if is_temp_name(name) else "name"
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # vanished between listing and stat
            if not stat.S_ISREG(info.st_mode):
                result.ignored[name] = _kind(info.st_mode)
                continue
            result.candidates[name] = (info.st_size, info.st_mtime_ns)
    return result


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    return "not a regular file"


def _regular(path: Path) -> os.stat_result | None:
    """`lstat` of a regular file; None if it is gone or not a regular file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    return info if stat.S_ISREG(info.st_mode) else None


def signature_of(path: Path) -> Signature | None:
    """(size, mtime_ns) of a regular file, None if it is gone or not a regular file."""
    info = _regular(path)
    return None if info is None else (info.st_size, info.st_mtime_ns)


def open_regular(path: Path) -> BinaryIO:
    """A regular file opened for reading, never following links or blocking on FIFOs."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput("not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_capped(path: Path, limit: int) -> bytes:
    """Up to `limit + 1` bytes of a regular file (plain descriptor reads: once per claim)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput("not a regular file")
        chunks = []
        remaining = limit + 1
        while remaining > 0 and (chunk := os.read(fd, remaining)):
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def file_digest(path: Path) -> tuple[int, str]:
    """(size, sha256) of a file, streamed."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


# A lease is refused when the file is open for writing (EAGAIN), or not ours to lease (EACCES:
# another user's file without CAP_LEASE), or not leasable on this filesystem (EINVAL: NFS,
# some FUSE filesystems).
_LEASE_BUSY = frozenset({errno.EAGAIN, errno.EBUSY})
LEASES_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP})


class LeasesUnsupported(Exception):
    """This filesystem grants no leases: asking again for other files is only round trips."""


def no_writer(path: Path) -> bool | None:
    """Whether no process has `path` open for writing now, by a read lease the kernel grants
    only then (and drops at once); None when the lease cannot say (another user's file).
    `LeasesUnsupported` where the filesystem has no leases (NFS).

    Local only, and only for this kernel's processes: a writer on another NFS client is never
    seen, which is why such files still settle.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        if exc.errno in LEASES_UNSUPPORTED:
            raise LeasesUnsupported(str(exc)) from None
        return False if exc.errno in _LEASE_BUSY else None
    else:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return True
    finally:
        os.close(fd)


def version_of(path: Path) -> str | None:
    """inode-size-mtime of a regular file: a rewrite, a replacement or a touch changes it.
    The same on every NFS client (the server's inode numbers and times)."""
    info = _regular(path)
    return None if info is None else f"{info.st_ino}-{info.st_size}-{info.st_mtime_ns}"


_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
# Filesystems (NFS among them) that do not take the flag: a hard link and an unlink instead.
_NO_NOREPLACE = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})


def _libc_renameat2() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None


_renameat2 = _libc_renameat2()


def rename_noreplace(source: Path, target: Path) -> None:
    """`rename(2)` that fails with FileExistsError instead of replacing `target` (Linux's
    `renameat2(RENAME_NOREPLACE)`: atomic, the file is in one place at every instant).
    OSError ENOSYS where the C library has no such call."""
    if _renameat2 is None:
        raise OSError(errno.ENOSYS, "renameat2 is not available")
    if _renameat2(
        _AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), _RENAME_NOREPLACE
    ):
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code), str(source), None, str(target))


def move_into(path: Path, directory: Path) -> Path:
    """Move `path` into `directory` under its name, never replacing a file there and never
    leaving half a file; where the name is taken, beside it under a unique name. The path
    it ended at.

    One rename that refuses to replace (`rename_noreplace`), on the same filesystem. Where
    the filesystem does not take that flag: a hard link and an unlink (a crash between them
    leaves two names of one file, and the next call only unlinks). Across filesystems: copy
    to a temp name, fsync, put it in place the same way, then remove the original; a crash in
    between leaves the original, and the next scan does it again.
    """
    target = directory / path.name
    try:
        return _place(path, path, target)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    return _copy_into(path, directory, target)


def _place(path: Path, source: Path, target: Path) -> Path:
    """Put `source` (the file, or a whole copy of it) at `target`, or beside it when the
    name is taken by other content; `path` is gone afterwards."""
    for attempt in (target, target.with_name(aside_name(path.name))):
        try:
            _no_replace(source, attempt)
        except FileExistsError:
            if attempt == target and _same(path, target):
                path.unlink()  # placed before a crash: only the original was left
                return target
            continue
        if source != path:
            path.unlink()
        return attempt
    raise FileExistsError(errno.EEXIST, "no free name beside it", str(target))


def _no_replace(source: Path, target: Path) -> None:
    try:
        rename_noreplace(source, target)
        return
    except OSError as exc:
        if exc.errno not in _NO_NOREPLACE:
            raise
    try:
        os.link(source, target, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
            raise
        # No hard links either (some FUSE filesystems): a look that the name is free, then
        # a rename (a peer moving the same file at the same instant moves the same bytes).
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, "exists", str(target)) from None
        os.rename(source, target)
        return
    source.unlink()


def _same(path: Path, target: Path) -> bool:
    """`target` is `path` itself, or a whole copy of its bytes (a move cut short)."""
    try:
        if os.path.samefile(path, target):
            return True
        return os.path.getsize(path) == os.path.getsize(target) and (
            file_digest(path) == file_digest(target)
        )
    except OSError:
        return False


def _copy_into(path: Path, directory: Path, target: Path) -> Path:
    temp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        with open_regular(path) as src, open(temp, "xb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        return _place(path, temp, target)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


class LocalSource:
    """A directory: scans, `lstat` signatures, `O_NOFOLLOW` reads, watchdog events."""

    atomic = False

    def __init__(
        self,
        data_dir: Path,
        hide: str | None = None,
        events: bool = True,
        clock_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.description = str(data_dir)
        self._hide = hide
        self._events = events
        self._clock_dir = clock_dir  # where a probe may be written (the state dir)
        self._clock_broken = False
        self._leases_unsupported = False

    def exists(self) -> bool:
        return self.data_dir.is_dir()

    def scan(self, skip: Callable[[str], bool]) -> ScanResult:
        return scan(self.data_dir, skip, self._hide)

    def names(self) -> set[str]:
        # Regular files only, as `scan` takes: a directory with a data file's name never
        # finishes, and would hold its key's publishing for ever.
        with os.scandir(self.data_dir) as entries:
            return {
                e.name for e in entries if is_data_name(e.name) and e.is_file(follow_symlinks=False)
            }

    def signature(self, name: str) -> Signature | None:
        return signature_of(self.data_dir / name)

    def open(self, name: str) -> BinaryIO:
        return open_regular(self.data_dir / name)

    def read_head(self, name: str, limit: int) -> bytes:
        return read_capped(self.data_dir / name, limit)

    def read_start(self, name: str, limit: int) -> tuple[bytes, str | None]:
        version = version_of(self.data_dir / name)  # first: a rewrite after it shows
        return read_capped(self.data_dir / name, limit), version

    def digest(self, name: str) -> tuple[int, str]:
        return file_digest(self.data_dir / name)

    def watch_appearance(
        self, loop: asyncio.AbstractEventLoop, wake: Callable[[], None]
    ) -> AppearanceWatcher | None:
        return AppearanceWatcher(self.data_dir, loop, wake) if self._events else None

    def clock(self) -> int | None:
        """The mtime a file created now gets: the filesystem's (the NFS server's) clock.

        The probe goes in the state dir when it shares the data dir's filesystem, else in
        the data dir under a temp-file name scans ignore; when neither can be written, None
        (and every file settles the full time, as without this).
        """
        if self._clock_broken:
            return None
        for directory in self._probe_dirs():
            path = directory / f".ingestd-clock-{secrets.token_hex(6)}.tmp"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            except OSError:
                continue
            try:
                return os.fstat(fd).st_mtime_ns
            finally:
                os.close(fd)
                with contextlib.suppress(OSError):
                    path.unlink()
        self._clock_broken = True
        return None

    def is_closed(self, name: str) -> bool | None:
        if self._leases_unsupported:
            return None
        try:
            return no_writer(self.data_dir / name)
        except LeasesUnsupported:
            self._leases_unsupported = True  # NFS: every file settles, as it always did
            return None

    def _probe_dirs(self) -> list[Path]:
        try:
            device = os.stat(self.data_dir).st_dev
            if self._clock_dir is not None and os.stat(self._clock_dir).st_dev == device:
                return [self._clock_dir]
        except OSError:
            pass
        return [self.data_dir]

    def move_target(self, disposal: Disposal) -> Path:
        """The directory `move:TARGET` names: relative ones are inside DIR."""
        return self.data_dir / disposal.target  # an absolute target replaces data_dir

    def version(self, name: str) -> str | None:
        return version_of(self.data_dir / name)

    def versions(self) -> dict[str, str]:
        found = {}
        for name in self.names():
            version = version_of(self.data_dir / name)
            if version is not None:
                found[name] = version
        return found

    def dispose(self, name: str, disposal: Disposal, processed: Content) -> None:
        path = self.data_dir / name
        version = version_of(path)
        if version is None:
            raise FileNotFoundError(errno.ENOENT, "gone", str(path))
        check_content(name, processed, version, lambda: file_digest(path))
        if disposal.kind == DELETE:
            path.unlink()
        elif disposal.kind == MOVE:
            target = self.move_target(disposal)
            try:
                move_into(path, target)
            except FileNotFoundError:
                if os.path.lexists(path) and not target.is_dir():
                    # Not "a peer was quicker": the target went away under a running fleet.
                    raise OSError(f"move target {target} does not exist") from None
                raise

    def watch(
        self, loop: asyncio.AbstractEventLoop, on_event: EventCallback, log: Log
    ) -> Watcher | None:
        if not self._events:
            return None
        return Watcher(self.data_dir, loop, on_event, log)


class LocalKind:
    """A directory, local or on NFS: `ingestd.sources.KINDS["file"]`."""

    scheme = "file"
    has_directory = True
    exact_mtimes = True
    rescan_interval = None

    def parse(self, location: str) -> str:
        return os.path.abspath(location.removeprefix("file:"))

    def identity(self, location: str) -> str:
        # The real path: a symlink to DIR, or DIR by another path, is DIR.
        return os.path.realpath(self.parse(location))

    def default_state_dir(self, location: str) -> Path:
        return Path(self.parse(location)) / ".ingestd"

    def default_output_dir(self, location: str) -> Path:
        return Path(self.parse(location)) / "out"

    def inode(self, location: str) -> int | None:
        try:
            return os.stat(self.parse(location)).st_ino
        except OSError:
            return None

    def for_run(self, settings: Settings) -> LocalSource:
        return _local(Path(settings.source), settings.state_dir, settings.watch)

    def start_checks(self, source: Source, settings: Settings) -> list[Callable[[], None]]:
        assert isinstance(source, LocalSource)
        return [lambda: prepare_move_targets(source, settings)]

    def for_operator(self, location: str, state_dir: Path | None) -> LocalSource:
        return _local(Path(self.parse(location)), state_dir)

    def problem(self, location: str) -> str | None:
        path = Path(self.parse(location))
        if not path.exists():
            return f"no such directory: {location}"
        if not path.is_dir():
            return f"not a directory: {location}"
        return None

    def holds_path(self, location: str, path: str) -> bool:
        parent = os.path.dirname(os.path.abspath(path))
        return os.path.realpath(parent) == os.path.realpath(self.parse(location))


def _local(data_dir: Path, state_dir: Path | None, events: bool = True) -> LocalSource:
    hide = None  # a state dir inside the directory is hidden from its scans
    if state_dir is not None and state_dir.parent == data_dir:
        hide = state_dir.name
    return LocalSource(
        data_dir,
        hide=hide,
        events=events,
        clock_dir=state_dir,
    )


def prepare_move_targets(source: LocalSource, settings: Settings) -> None:
    """Create `move:DIR` targets; `StartupError` when one cannot be written."""
    for option, text in (("--on-done", settings.on_done), ("--on-failed", settings.on_failed)):
        disposal = Disposal.parse(text)
        if disposal.kind != MOVE:
            continue
        target = source.move_target(disposal)
        # Real paths: a target that is a symlink to DIR (or DIR reached by another path) is
        # DIR itself, and a file "moved" there would be moved again at every scan.
        if os.path.realpath(target) == os.path.realpath(source.data_dir):
            raise StartupError(f"{option} {text}: that is the watched directory itself")
        try:
            target.mkdir(parents=True, exist_ok=True)
            probe_writable(target)
        except OSError as exc:
            raise unusable_dir(f"{option} target", target, exc) from None


KIND = LocalKind()
