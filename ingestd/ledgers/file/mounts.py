"""Refuse NFS mounts that silently turn off cross-host locking.

With `local_lock=flock` (or `all`), or NFSv3 `nolock`, the client keeps `flock` locks to
itself: two hosts would both win every claim. Read `/proc/self/mountinfo`, find the mount
holding the state dir, and say no before doing any work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_NFS_TYPES = frozenset({"nfs", "nfs4"})


@dataclass(frozen=True)
class Mount:
    mount_point: str
    fstype: str
    source: str
    options: frozenset[str]


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal: "\040".
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit() and i + 4 <= len(field):
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> list[Mount]:
    """Mounts from `/proc/self/mountinfo` text (see proc(5))."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 6 or len(tail) < 3:
            continue
        options = set(fields[5].split(",")) | set(tail[2].split(","))
        mounts.append(Mount(_unescape(fields[4]), tail[0], _unescape(tail[1]), frozenset(options)))
    return mounts


def mount_of(path: str, mounts: list[Mount]) -> Mount | None:
    """The mount `path` (absolute, resolved) lives on: the last, longest matching mount point."""
    best: Mount | None = None
    for mount in mounts:
        point = mount.mount_point.rstrip("/") or "/"
        inside = path == point or path.startswith(point + "/") or point == "/"
        if inside and (best is None or len(point) >= len(best.mount_point.rstrip("/") or "/")):
            best = mount
    return best


def unsafe_lock_reason(mount: Mount | None) -> str | None:
    """Why this mount cannot carry cross-host claims, or None if it can."""
    if mount is None or mount.fstype not in _NFS_TYPES:
        return None
    for option in ("local_lock=flock", "local_lock=all", "nolock"):
        if option in mount.options:
            return (
                f"{mount.mount_point} is mounted from {mount.source} with {option}: "
                "flock would not exclude other hosts; remount without it"
            )
    return None


def check_state_dir(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> str | None:
    try:
        text = mountinfo.read_text()
    except OSError:
        return None  # not Linux, or no /proc: nothing to check against
    return unsafe_lock_reason(mount_of(os.path.realpath(path), parse_mountinfo(text)))
