"""Worker heartbeats and the cluster-wide pause flag, both plain files in the state dir.

`STATE/workers/<worker-id>.json` is replaced atomically (temp file + rename) every few
seconds, so a reader never sees half a heartbeat; a heartbeat that stops changing belongs to a
lost worker. `STATE/paused` existing means: finish what you hold, claim nothing new.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STALE_AFTER_BEATS = 3


def heartbeat_path(workers_dir: Path, worker_id: str) -> Path:
    return workers_dir / f"{worker_id}.json"


def write_heartbeat(workers_dir: Path, worker_id: str, data: dict[str, Any]) -> None:
    path = heartbeat_path(workers_dir, worker_id)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temp.write_text(json.dumps({**data, "heartbeat_at": time.time()}) + "\n")
    os.replace(temp, path)


def remove_heartbeat(workers_dir: Path, worker_id: str) -> None:
    heartbeat_path(workers_dir, worker_id).unlink(missing_ok=True)


def read_heartbeats(workers_dir: Path) -> list[dict[str, Any]]:
    try:
        paths = sorted(workers_dir.glob("*.json"))
    except OSError:
        return []
    return [beat for path in paths if (beat := _load(path)) is not None]


def read_heartbeat(workers_dir: Path, worker_id: str) -> dict[str, Any] | None:
    return _load(heartbeat_path(workers_dir, worker_id))


def _load(path: Path) -> dict[str, Any] | None:
    try:
        beat = json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # removed, or replaced while we looked
    return beat if isinstance(beat, dict) else None


def is_lost(beat: dict[str, Any], now: float | None = None) -> bool:
    """A heartbeat not refreshed for three of its own intervals belongs to a lost worker."""
    interval = float(beat.get("interval", 5.0))
    age = (now if now is not None else time.time()) - float(beat.get("heartbeat_at", 0))
    return age > STALE_AFTER_BEATS * interval


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
