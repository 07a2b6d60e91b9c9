"""The `file` ledger and its inspector: the claim protocol and the done-manifest on a state dir.

`STATE/locks/NAME.lock` (flock = the claim, content = the owner and attempt count),
`STATE/manifest.jsonl` (the fenced, fsynced record of what is finished), `STATE/workers/`
(heartbeats, aged by the state dir's own clock) and `STATE/paused`. Every method blocks on the
filesystem (on NFS each call is a round trip): the daemon calls them in threads.
"""

from __future__ import annotations

import contextlib
import errno
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from ingestd.contracts.ledger import (
    FINISHED,
    REASSERT_EVERY,
    Heartbeat,
    Hold,
    Holding,
    Owner,
    Record,
    RetryRequest,
    Stored,
    Summary,
    SummaryBlock,
    Transaction,
    claim_in_order,
    count_failed,
    failed_names,
)
from ingestd.ledgers.file import claim as claims
from ingestd.ledgers.file.heartbeat import (
    prune_lost,
    read_heartbeat,
    read_heartbeats,
    remove_heartbeat,
    set_paused,
    write_heartbeat,
)
from ingestd.ledgers.file.manifest import (
    DONE,
    Manifest,
    read_records,
    read_summaries,
    read_summary_blocks,
    standing_failed_records,
)
from ingestd.ledgers.file.statedir import claim_source, prepare_state_dir, recreate_state_dir

# Live holders check their claims every REASSERT_EVERY seconds: a few of those after we made
# the locks folder (again, or for the first time: the two look alike), every one still at
# work has put its lock file back.
RECREATE_GRACE = 4 * REASSERT_EVERY


class FileLedger:
    def __init__(
        self,
        state_dir: Path,
        prepare: Callable[[], None] | None = None,
        on_bad_line: Callable[[int, bytes], None] | None = None,
        on_replaced: Callable[[], None] | None = None,
        on_recreated: Callable[[], None] | None = None,
        source: str | None = None,
        source_inode: Callable[[], int | None] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.source = source  # the one source this state dir serves (checked at start-up)
        self._source_inode = source_inode
        self.description = str(state_dir)
        self.locks_dir = state_dir / "locks"
        self.workers_dir = state_dir / "workers"
        self.manifest = Manifest(
            state_dir / "manifest.jsonl",
            state_dir / "manifest.lock",
            on_bad_line=on_bad_line,
            on_replaced=on_replaced,
        )
        self._prepare = prepare
        self._on_recreated = on_recreated
        self._claims_resume_at = 0.0  # monotonic: no claims before (after a recreation)

    # ---- lifecycle ----

    def prepare(self) -> None:
        if self._prepare is not None:
            self._prepare()
        elif prepare_state_dir(self.state_dir):
            # A locks folder made just now may be a removed state dir's successor, with
            # holders still at work: they put their lock files back before we claim.
            self._claims_resume_at = time.monotonic() + RECREATE_GRACE
        if self.source is not None:
            inode = self._source_inode() if self._source_inode is not None else None
            claim_source(self.state_dir, self.source, inode)

    def close(self) -> None:
        self.manifest.close()

    # ---- what is finished ----

    def sync(self) -> None:
        self.manifest.refresh()

    def is_finished(self, name: str) -> bool:
        return self.manifest.is_finished(name)

    def is_done(self, name: str) -> bool:
        return self.manifest.status.get(name) == DONE

    def finished_count(self) -> int:
        return len(self.manifest.status)

    def last_record(self, name: str) -> Stored | None:
        found = self.manifest.last_record(name)
        return None if found is None else Stored.from_dict(found)

    # ---- claims ----

    def claim_first(self, names: list[str]) -> tuple[list[tuple[str, str]], Hold | None]:
        return claim_in_order(self.try_claim, names)

    def try_claim(self, name: str) -> claims.Claim:
        wait = self._claims_resume_at - time.monotonic()
        if wait > 0:
            # We made the locks folder: live holders (if the state dir was removed under
            # them) have not yet put their lock files back, and a fresh lock file here would
            # let us run a file they still work on. Waited out here, in the claim's thread:
            # a file given up as busy would wait for the next scan.
            time.sleep(wait)
        try:
            return claims.try_claim(self.locks_dir, name)
        except OSError as exc:
            self._recreate_if_gone(exc)
            raise

    def commit(
        self,
        hold: Hold,
        record: Record,
        on_written: Callable[[], None] | None = None,
        transaction: Transaction | None = None,
    ) -> bool:
        """Step 6: append + fsync under the manifest lock, then unlink and release."""
        before = transaction.commit if transaction is not None else None
        try:
            written = self.manifest.commit(record.to_dict(), on_written, before)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                hold.abandon()
            if isinstance(exc, OSError):
                self._recreate_if_gone(exc)
            raise
        finally:
            if transaction is not None:
                transaction.close()  # rolls back unless committed (fenced out, or failed)
        hold.finish()
        return written

    def _recreate_if_gone(self, exc: OSError) -> None:
        # Someone removed the state dir while we ran: make it again (never its parents).
        recreated = exc.errno == errno.ENOENT and recreate_state_dir(self.state_dir)
        if recreated:
            self._claims_resume_at = time.monotonic() + RECREATE_GRACE
            if self._on_recreated is not None:
                self._on_recreated()

    def leftovers(self) -> list[str]:
        return [name for name in claims.lock_names(self.locks_dir) if self.is_finished(name)]

    def sweep(self, names: list[str]) -> list[str]:
        """Remove lock files left behind for finished files; the names removed.

        A worker killed after its record was written but before it unlinked its lock file
        leaves one behind: harmless to the protocol, but it would carry a stale attempt count
        into an `ingestd retry` and clutter the locks dir. Each is claimed like a file, so a
        live holder is never disturbed, and removed only if the manifest, read again under
        the claim, says the file is finished.
        """
        removed = []
        for name in names:
            try:
                claim = claims.try_claim(self.locks_dir, name)
            except (claims.Busy, claims.Unusable):
                continue
            except OSError:
                break  # the state dir is in trouble; the next rescan tries again
            try:
                self.manifest.refresh()
                if self.manifest.is_finished(name):
                    claim.finish()
                    removed.append(name)
                else:
                    claim.abandon()  # `ingestd retry` made it eligible again: leave it be
            except BaseException:
                with contextlib.suppress(OSError):
                    claim.abandon()
                raise
        return removed

    # ---- heartbeats and the pause flag ----

    def write_heartbeat(self, beat: Heartbeat) -> None:
        write_heartbeat(self.workers_dir, beat)

    def remove_heartbeat(self, worker: str) -> None:
        remove_heartbeat(self.workers_dir, worker)

    def read_heartbeat(self, worker: str) -> Heartbeat | None:
        return read_heartbeat(self.workers_dir, worker)

    def workers(self) -> list[Heartbeat]:
        return read_heartbeats(self.workers_dir)

    def failed_count(self) -> int:
        return count_failed(self.manifest.status)

    def failed_names(self) -> list[str]:
        return failed_names(self.manifest.status)

    def prune_workers(self, after: float) -> list[str]:
        return prune_lost(self.workers_dir, after)

    def paused(self) -> bool:
        return (self.state_dir / "paused").exists()


class FileInspector:
    """The operator's view of a state dir. Reads never disturb running workers: lock files
    are probed with a non-blocking shared lock that is dropped at once."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.locks_dir = state_dir / "locks"
        self.workers_dir = state_dir / "workers"
        self.manifest_path = state_dir / "manifest.jsonl"
        self._bad_lines: set[int] = set()  # byte offsets of lines that are not records

    def exists(self) -> bool:
        return self.state_dir.is_dir()

    def statuses(self) -> dict[str, str]:
        # The daemon's own reader: its fast path keeps a million-record manifest to seconds.
        manifest = Manifest(self.manifest_path, self.state_dir / "manifest.lock")
        try:
            manifest.refresh()
        finally:
            manifest.close()
        return manifest.status

    def records(self) -> Iterator[Stored]:
        for data in read_records(self.manifest_path, self._bad_line):
            if (record := Stored.from_dict(data)) is not None:
                yield record

    def summaries(self) -> Iterator[Summary]:
        return read_summaries(self.manifest_path, self._bad_line)

    def summary_blocks(self) -> Iterator[SummaryBlock]:
        return read_summary_blocks(self.manifest_path, self._bad_line)

    def history(self, name: str) -> list[Stored]:
        # Lines without the name, as `encode` writes it, are skipped unparsed: one file's
        # story from a million records in the time it takes to read them.
        quoted = json.dumps(name, ensure_ascii=True).encode()
        found = []
        for data in read_records(self.manifest_path, self._bad_line, lines_with=quoted):
            if data.get("file") == name and (record := Stored.from_dict(data)) is not None:
                found.append(record)
        return found

    def unreadable(self) -> int:
        return len(self._bad_lines)

    def _bad_line(self, offset: int, line: bytes) -> None:
        self._bad_lines.add(offset)

    def failed_records(self) -> dict[str, Stored]:
        found = standing_failed_records(self.manifest_path)
        return {name: r for name, data in found.items() if (r := Stored.from_dict(data))}

    def holdings(self) -> list[Holding]:
        found = []
        try:
            paths = sorted(self.locks_dir.glob("*.lock"))
        except OSError:
            return []
        now = datetime.now(UTC)
        for path in paths:
            try:
                held, owner = claims.probe(path)
            except OSError:
                continue  # released and removed while we looked
            if not held:
                continue
            age = None
            if owner is not None:
                with contextlib.suppress(ValueError):
                    age = round((now - datetime.fromisoformat(owner.claimed_at)).total_seconds(), 1)
            found.append(
                Holding(
                    file=path.name.removesuffix(".lock"),
                    worker=owner.worker if owner else None,
                    attempt=owner.attempt if owner else None,
                    age_seconds=age,
                )
            )
        return found

    def claim(self, name: str) -> tuple[bool, Owner | None]:
        try:
            return claims.probe(claims.lock_path(self.locks_dir, name))
        except FileNotFoundError:
            return False, None  # never claimed, or finished and swept

    def workers(self) -> list[Heartbeat]:
        return read_heartbeats(self.workers_dir)

    def prune_workers(self, after: float) -> list[str]:
        return prune_lost(self.workers_dir, after)

    def problems(self) -> list[str]:
        found = [
            f"{name}: not a regular file (that file cannot be claimed)"
            for name in claims.unusable_lock_paths(self.locks_dir)
        ]
        if self._bad_lines:
            first = min(self._bad_lines)
            found.append(
                f"{self.manifest_path}: {len(self._bad_lines)} lines are not records, the "
                f"first at byte {first} (skipped; `ingestd compact` drops them)"
            )
        return found

    def paused(self) -> bool:
        return (self.state_dir / "paused").exists()

    def set_paused(self, paused: bool) -> bool:
        return set_paused(self.state_dir / "paused", paused)

    def retry(self, request: RetryRequest) -> None:
        manifest = Manifest(self.manifest_path, self.state_dir / "manifest.lock")
        try:
            manifest.commit(request.to_dict())
        finally:
            manifest.close()


__all__ = ["FINISHED", "FileInspector", "FileLedger"]
