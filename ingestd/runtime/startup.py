"""Start-up checks of directories a worker must write: one line a person can act on, exit 2.

Under systemd's `ProtectSystem=strict` every directory outside the data dir is read-only
until a drop-in adds it to `ReadWritePaths=`, so a read-only or forbidden one is named with
that hint.
"""

from __future__ import annotations

import errno
import secrets
from pathlib import Path

from ingestd.contracts.errors import StartupError

_READ_ONLY_HINT = (
    " (under systemd's ProtectSystem=strict, add it to ReadWritePaths= in a drop-in: "
    "see systemd/README.md)"
)


def probe_writable(path: Path) -> None:
    """Create and remove a file in `path`; raises OSError if it cannot be done."""
    # A random name: peers start at the same moment, and on other hosts (or in containers)
    # they may well have our PID.
    probe = path / f".probe-{secrets.token_hex(8)}"
    probe.open("xb").close()
    probe.unlink()


def unusable_dir(what: str, path: Path, exc: OSError) -> StartupError:
    """One line for a directory the worker must write and cannot, with the unit's hint."""
    hint = _READ_ONLY_HINT if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else ""
    return StartupError(f"{what} {path} is not usable: {exc.strerror}{hint}")
