"""Worker heartbeats and the cluster-wide pause flag, both plain files in the state dir.

`STATE/workers/<worker-id>.json` is replaced atomically (temp file + rename) every few
seconds, so a reader never sees half a heartbeat. Its age is judged by the state dir's own
clock: the file's mtime against the mtime of a probe file made at that moment, never another
host's clock against ours. A heartbeat older than three of its intervals belongs to a lost
worker; one lost for `ledger.PRUNE_AFTER` more is removed by any running worker (or by `ingestd
workers --prune`). `STATE/paused` existing means: finish what you hold, claim nothing new.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path

from ingestd.contracts.ledger import STALE_AFTER_BEATS, Heartbeat


def heartbeat_path(workers_dir: Path, worker_id: str) -> Path:
    return workers_dir / f"{worker_id}.json"


def write_heartbeat(workers_dir: Path, beat: Heartbeat) -> None:
    path = heartbeat_path(workers_dir, beat.worker)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    data = beat.to_dict()
    data.pop("age_seconds")  # a reader's figure, not the writer's
    temp.write_text(json.dumps({**data, "heartbeat_at": time.time()}) + "\n")
    os.replace(temp, path)


def remove_heartbeat(workers_dir: Path, worker_id: str) -> None:
    heartbeat_path(workers_dir, worker_id).unlink(missing_ok=True)


def state_dir_now(directory: Path) -> float:
    """The filesystem's clock: the mtime of a probe file made in `directory` just now.

    On NFS, mtimes are set by the server, so this compares like with like whatever the
    clocks of the hosts say. Falls back to this host's clock where nothing can be written.
    """
    probe = directory / f".clock-{secrets.token_hex(8)}"
    try:
        probe.open("xb").close()
    except OSError:
        return time.time()
    try:
        return probe.stat().st_mtime
    except OSError:
        return time.time()
    finally:
        probe.unlink(missing_ok=True)


def read_heartbeats(workers_dir: Path, now: float | None = None) -> list[Heartbeat]:
    """Every heartbeat, each with `age_seconds` by the state dir's clock."""
    try:
        paths = sorted(workers_dir.glob("*.json"))
    except OSError:
        return []
    if not paths:
        return []
    clock = state_dir_now(workers_dir) if now is None else now
    return [beat for path in paths if (beat := _load(path, clock)) is not None]


def read_heartbeat(workers_dir: Path, worker_id: str) -> Heartbeat | None:
    return _load(heartbeat_path(workers_dir, worker_id), state_dir_now(workers_dir))


def _load(path: Path, clock: float) -> Heartbeat | None:
    try:
        mtime = path.stat().st_mtime
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # removed, or replaced while we looked
    beat = Heartbeat.parse(data) if isinstance(data, dict) else None
    if beat is not None:
        beat.age_seconds = round(max(clock - mtime, 0.0), 3)
    return beat


def prune_lost(workers_dir: Path, after: float) -> list[str]:
    """Remove the heartbeats of workers lost for more than `after` seconds; their ids."""
    pruned = []
    clock = state_dir_now(workers_dir)
    for beat in read_heartbeats(workers_dir, clock):
        if not beat.lost or beat.lost_for <= after:
            continue
        worker = beat.worker
        path = heartbeat_path(workers_dir, worker)
        try:
            # A worker restarted under the same id may have just written a fresh one.
            if clock - path.stat().st_mtime < STALE_AFTER_BEATS * beat.interval:
                continue
            path.unlink()
        except OSError:
            continue
        pruned.append(worker)
    return pruned


def set_paused(pause_flag: Path, paused: bool) -> bool:
    """Set or clear the pause flag; returns whether anything changed."""
    if paused:
        try:
            fd = os.open(pause_flag, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o664)
        except FileExistsError:
            return False
        os.close(fd)
        return True
    try:
        pause_flag.unlink()
    except FileNotFoundError:
        return False
    return True
