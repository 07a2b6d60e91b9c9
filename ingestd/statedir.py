"""The state dir on disk: prepared and checked at start-up, recreated if it vanishes.

Start-up makes `STATE/`, `locks/` and `workers/`, proves them writable with a probe file and
refuses an NFS mount whose locks are host-local. Every failure is one line a person can act
on (exit 2): under systemd's `ProtectSystem=strict`, a state or output dir outside the data
dir is read-only until a drop-in adds it to `ReadWritePaths=`, and the line says so.
"""

from __future__ import annotations

import errno
import os
import secrets
from pathlib import Path

from .errors import StartupError
from .mounts import check_state_dir
from .settings import Settings

_HINT_ROFS = (
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


def _unusable(what: str, path: Path, exc: OSError) -> StartupError:
    hint = _HINT_ROFS if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else ""
    return StartupError(f"{what} {path} is not usable: {exc.strerror}{hint}")


def prepare_state_dir(settings: Settings) -> None:
    """Make the state dir's folders and prove them writable; StartupError if not."""
    try:
        for path in (settings.state_dir, settings.locks_dir, settings.workers_dir):
            path.mkdir(mode=0o775, exist_ok=True)
        probe_writable(settings.state_dir)
    except OSError as exc:
        raise _unusable("state dir", settings.state_dir, exc) from exc
    reason = check_state_dir(settings.state_dir)
    if reason is not None:
        raise StartupError(f"refusing state dir {settings.state_dir}: {reason}")


def prepare_output_dir(path: Path) -> None:
    """A handler's output dir: made if missing and proved writable; StartupError if not."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe_writable(path)
    except OSError as exc:
        raise _unusable("output dir", path, exc) from exc


def recreate_state_dir(settings: Settings) -> bool:
    """Make the state dir's folders again if someone removed them; True if anything was made.

    Only the last path component is made, never its parents: if the data dir itself is gone
    (an NFS mount went away), nothing is created on the local disk under the mount point.
    """
    made = False
    for path in (settings.state_dir, settings.locks_dir, settings.workers_dir):
        try:
            os.mkdir(path, 0o775)
            made = True
        except FileExistsError:
            continue
        except OSError:
            return made
    return made
