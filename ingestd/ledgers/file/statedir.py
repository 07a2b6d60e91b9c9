"""The state dir on disk: prepared and checked at start-up, made again if it vanishes.

Start-up makes `STATE/`, `locks/` and `workers/`, proves them writable with a probe file and
refuses an NFS mount whose locks are host-local. Every failure is one line a person can act
on (exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path

from ...errors import StartupError
from ...startup import probe_writable, unusable_dir
from .mounts import check_state_dir

_PARTS = ("locks", "workers")


def prepare_state_dir(state_dir: Path) -> None:
    """Make the state dir's folders and prove them writable; StartupError if not."""
    try:
        for path in (state_dir, *(state_dir / part for part in _PARTS)):
            path.mkdir(mode=0o775, exist_ok=True)
        probe_writable(state_dir)
    except OSError as exc:
        raise unusable_dir("state dir", state_dir, exc) from exc
    reason = check_state_dir(state_dir)
    if reason is not None:
        raise StartupError(f"refusing state dir {state_dir}: {reason}")


def recreate_state_dir(state_dir: Path) -> bool:
    """Make the state dir's folders again if someone removed them; True if anything was made.

    Only the last path component is made, never its parents: if the data dir itself is gone
    (an NFS mount went away), nothing is created on the local disk under the mount point.
    """
    made = False
    for path in (state_dir, *(state_dir / part for part in _PARTS)):
        try:
            os.mkdir(path, 0o775)
            made = True
        except FileExistsError:
            continue
        except OSError:
            return made
    return made
