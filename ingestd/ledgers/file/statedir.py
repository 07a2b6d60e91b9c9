"""The state dir on disk: prepared and checked at start-up, made again if it vanishes.

Start-up makes `STATE/`, `locks/` and `workers/`, proves them writable with a probe file and
refuses an NFS mount whose locks are host-local. A state dir belongs to one source: `STATE/source`
names it, written by the first start, and a worker of another source is refused. The same file
says the state dir's format (`FORMAT`; none said: 1): a state dir of a newer format is refused,
never misread, and a later format will name `ingestd migrate` for an older one. Every failure
is one line a person can act on (exit 2).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from ingestd.contracts.errors import StartupError
from ingestd.ledgers.file.mounts import check_state_dir
from ingestd.runtime.startup import probe_writable, unusable_dir

_PARTS = ("locks", "workers")


def prepare_state_dir(state_dir: Path) -> bool:
    """Make the state dir's folders and prove them writable; StartupError if not. Whether
    the locks folder was made just now (a new state dir, or one removed under a fleet)."""
    made = False
    try:
        for path in (state_dir, *(state_dir / part for part in _PARTS)):
            try:
                path.mkdir(mode=0o775)
                made = made or path.name == "locks"
            except FileExistsError:
                pass
        probe_writable(state_dir)
    except OSError as exc:
        raise unusable_dir("state dir", state_dir, exc) from exc
    reason = check_state_dir(state_dir)
    if reason is not None:
        raise StartupError(f"refusing state dir {state_dir}: {reason}")
    return made


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


SOURCE_FILE = "source"
FORMAT = 1  # the layout of the state dir and its manifest records this version writes


def claim_source(state_dir: Path, source: str, inode: int | None) -> None:
    """Make `state_dir` this source's, or check that it is; `StartupError` if it is another's.

    `inode` (a local source's directory) lets one directory reached by two paths (an NFS
    mount at different places on two hosts) count as one source: an inode number is the
    server's, the same on every client.
    """
    path = state_dir / SOURCE_FILE
    mine = {"source": source, "inode": inode, "format": FORMAT}
    try:
        _write_new(path, json.dumps(mine).encode() + b"\n")
        return
    except FileExistsError:
        pass
    except OSError as exc:
        raise unusable_dir("state dir", state_dir, exc) from exc
    try:
        theirs = json.loads(path.read_bytes())
        owner, owner_inode = str(theirs["source"]), theirs.get("inode")
        written = int(theirs.get("format", 1))
    except (OSError, ValueError, KeyError, TypeError):
        raise StartupError(
            f"state dir {state_dir}: {path} is unreadable; it names the one source this "
            "state dir belongs to (remove it only if that is this one)"
        ) from None
    if written > FORMAT:
        raise StartupError(
            f"state dir {state_dir} is of format {written}, newer than this ingestd "
            f"understands ({FORMAT}): upgrade ingestd"
        )
    if owner == source or (inode is not None and owner_inode == inode and "fleet:" not in owner):
        return
    raise StartupError(
        f"state dir {state_dir} belongs to {owner}, not {source}: give each source its own "
        "--state-dir (or the same --fleet NAME where hosts reach one directory by different "
        "paths)"
    )


def _write_new(path: Path, data: bytes) -> None:
    """Write `path` whole, only if it does not exist (FileExistsError): a temp file linked
    into place, so a peer starting at the same moment never reads half of it."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    with open(temp, "xb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(temp, path)
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
