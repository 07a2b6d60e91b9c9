"""The ledger: who holds which file and which files are finished, behind small interfaces.

The claim protocol (docs/concepts/claim-protocol.md) lives once, in `ingestd/core/processor.py`;
it talks to a `Ledger`: `try_claim` one name (a `Hold`, or `Busy` when a peer has it), `sync`
the view of what is finished, `begin` an attempt on the hold, `commit` a record (fenced:
nothing is written when a peer already recorded the file done), or give the hold back with or
without spending the attempt. The operator commands read and steer the same state through an
`Inspector`.

What every ledger promises (`tests/contract/test_ledgers.py` checks each one): no two holds on
one name at once, across the tasks of a process and across processes where the backend can
tell them apart; at most one `done` record per file; a dead worker's holds are taken over; the
attempt count survives a crash and a give-back without spending it; records of one worker come
back in commit order; pause and resume; heartbeats.

The `file` ledger (`ledgers/file/`) keeps all of this in a state dir on a POSIX filesystem;
`ledgers/memory.py` keeps it in one process, for tests.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple, Protocol

STALE_AFTER_BEATS = 3  # a heartbeat older than this many of its intervals: the worker is lost
PRUNE_AFTER = 3600.0  # seconds a lost worker stays listed as LOST before its heartbeat goes
# How often a worker checks that each claim it holds is still provably its own (`reassert`);
# a worker that recreated a removed state dir claims nothing for a few of these.
REASSERT_EVERY = 0.1  # two system calls per held file: cheap enough to do often

DONE = "done"
FAILED = "failed"
RETRY = "retry"
# An operator's `ingestd retry` of a done file whose source now holds other content: the file
# is open again, and its next done record is the one that stands.
REDO = "redo"
FINISHED = frozenset({DONE, FAILED})


def fold_statuses(
    records: Iterable[tuple[str, str]], into: dict[str, str] | None = None
) -> dict[str, str]:
    """Each file's status after `records` (name, status) in commit order: a later record wins,
    except over `done`, which is final but for an operator's `redo`. The one rule every
    ledger's reader applies."""
    found = {} if into is None else into
    for name, status in records:
        if found.get(name) != DONE or status == REDO:
            found[name] = status
    return found


@dataclass
class StatusView:
    """A worker's local view of what is finished, fed record by record in commit order."""

    status: dict[str, str] = field(default_factory=dict)

    def apply(self, records: Iterable[tuple[str, str]]) -> None:
        fold_statuses(records, self.status)

    def is_finished(self, name: str) -> bool:
        return self.status.get(name) in FINISHED

    def is_done(self, name: str) -> bool:
        return self.status.get(name) == DONE

    def __len__(self) -> int:
        return len(self.status)

    def failed_count(self) -> int:
        return count_failed(self.status)

    def failed_names(self) -> list[str]:
        return failed_names(self.status)


def standing_failed(records: Iterable[Stored]) -> dict[str, Stored]:
    """`Inspector.failed_records` from records in commit order (`fold_statuses`'s rule)."""
    status: dict[str, str] = {}
    failed: dict[str, Stored] = {}
    for record in records:
        name, state = record.file, record.status
        if status.get(name) == DONE and state != REDO:
            continue
        status[name] = state
        if state == FAILED:
            failed[name] = record
        else:
            failed.pop(name, None)
    return failed


def failed_names(statuses: Mapping[str, str]) -> list[str]:
    """Files failed and not retried (a copy first, as `count_failed` says why)."""
    return [name for name, status in list(statuses.items()) if status == FAILED]


def count_failed(statuses: Mapping[str, str]) -> int:
    # A copy first: a scan thread may be adding records meanwhile, and a dict must not change
    # size under an iterator (list() copies without letting another thread in).
    return sum(1 for status in list(statuses.values()) if status == FAILED)


class Busy(Exception):
    """A peer (or another task of this process) holds the file."""


class Unusable(Exception):
    """The file cannot be claimed until an operator looks (a symlink planted at a lock path)."""


BUSY = "busy"
ALREADY_FINISHED = "already_finished"


def claim_in_order(
    try_claim: Callable[[str], Hold], names: list[str]
) -> tuple[list[tuple[str, str]], Hold | None]:
    """`Ledger.claim_first` as one `try_claim` per name. An error on a later name ends the
    pass without it: the caller's next pass starts there, so the error names its file."""
    passed: list[tuple[str, str]] = []
    for name in names:
        try:
            return passed, try_claim(name)
        except Busy:
            passed.append((name, BUSY))
        except (Unusable, OSError):
            if not passed:
                raise
            break
    return passed, None


@dataclass(frozen=True)
class Owner:
    """Who holds a file, written into the claim when an attempt begins."""

    worker: str
    host: str
    pid: int
    claimed_at: str
    attempt: int = 0
    error: str | None = None  # why the attempt ended, when it crashed

    def to_json(self) -> bytes:
        # Spelled out: `asdict` deep-copies, and this runs once per claim.
        data: dict[str, object] = {
            "worker": self.worker,
            "host": self.host,
            "pid": self.pid,
            "claimed_at": self.claimed_at,
            "attempt": self.attempt,
        }
        if self.error is not None:
            data["error"] = self.error
        return json.dumps(data).encode()

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Owner | None:
        """An owner from a decoded record; None if it is not one (hand-edited, foreign)."""
        try:
            attempt = int(data.get("attempt", 0))
            pid = int(data.get("pid", 0))
        except (TypeError, ValueError):
            return None
        error = data.get("error")
        return cls(
            worker=str(data.get("worker")),
            host=str(data.get("host")),
            pid=pid,
            claimed_at=str(data.get("claimed_at", "")),
            attempt=attempt,
            error=error if isinstance(error, str) else None,
        )


@dataclass(frozen=True)
class Record:
    """One finished attempt: what the manifest (or a ledger table) keeps per file."""

    file: str
    status: str  # done | failed
    worker: str
    host: str
    pid: int
    attempt: int
    seen_at: str
    started_at: str
    finished_at: str
    minutes: float | None = None
    size: int | None = None
    sha256: str | None = None
    error: str | None = None
    outputs: tuple[str, ...] = ()
    records: int | None = None
    version: str | None = None  # the source's version of the file when it was claimed

    def to_dict(self) -> dict[str, Any]:
        """The manifest layout: `file` and `status` first, optional fields only when set."""
        data: dict[str, Any] = {
            "file": self.file,
            "status": self.status,
            "worker": self.worker,
            "host": self.host,
            "pid": self.pid,
            "attempt": self.attempt,
            "minutes": self.minutes,
            "size": self.size,
            "sha256": self.sha256,
            "seen_at": self.seen_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }
        if self.error is not None:
            data["error"] = self.error
        if self.outputs:
            data["outputs"] = list(self.outputs)
        if self.records is not None:
            data["records"] = self.records
        if self.version is not None:
            data["version"] = self.version
        return data


@dataclass(frozen=True)
class RetryRequest:
    """An operator's `ingestd retry NAME`: a failed file becomes eligible again."""

    file: str
    worker: str
    requested_at: str
    previous_error: str | None
    status: str = RETRY  # or REDO: a done file whose source holds other content now
    previous_sha256: str | None = None  # REDO: the content that was processed before

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "file": self.file,
            "status": self.status,
            "worker": self.worker,
            "requested_at": self.requested_at,
            "previous_error": self.previous_error,
        }
        if self.previous_sha256 is not None:
            data["previous_sha256"] = self.previous_sha256
        return data


@dataclass(slots=True)
class Stored:
    """One record as a ledger keeps it, read back: a finished attempt (`done`, `failed`) or
    an operator's request (`retry`, `redo`). Fields a record of its kind lacks are None.
    Read-only by convention: not frozen, whose `__init__` costs twice as much (a million of
    them are read by `timeline`)."""

    file: str
    status: str
    worker: str | None = None
    host: str | None = None
    pid: int | None = None
    attempt: int | None = None
    minutes: float | None = None
    size: int | None = None
    sha256: str | None = None
    seen_at: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    outputs: tuple[str, ...] = ()
    records: int | None = None
    version: str | None = None
    requested_at: str | None = None
    previous_error: str | None = None
    previous_sha256: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stored | None:
        """A record from its stored form; None if it has no file and status. A field of
        the wrong type (a hand-edited line) is read as missing, not trusted."""
        # One comprehension, exact types (a bool is no int here): a million records are read
        # this way by `timeline`.
        found = {k: v for k, v in data.items() if type(v) in _STORED_TYPES.get(k, ())}
        if len(found) < 2 or "file" not in found or "status" not in found:
            return None
        outputs = found.get("outputs")
        if outputs is not None:
            if not all(type(v) is str for v in outputs):
                del found["outputs"]
            else:
                found["outputs"] = tuple(outputs)
        if type(found.get("minutes")) is int:
            found["minutes"] = float(found["minutes"])
        return cls(**found)

    def to_dict(self) -> dict[str, Any]:
        """The fields that are set, `file` and `status` first (for JSON output)."""
        data: dict[str, Any] = {"file": self.file, "status": self.status}
        for key in _OPTIONAL_FIELDS:
            value = getattr(self, key)
            if value is not None and value != ():
                data[key] = list(value) if key == "outputs" else value
        return data


_STR: tuple[type, ...] = (str,)
_INT: tuple[type, ...] = (int,)
# Tuples, not sets: `in` on one or two types is quicker than a hash.
_STORED_TYPES: dict[str, tuple[type, ...]] = {
    "file": _STR, "status": _STR, "worker": _STR, "host": _STR, "pid": _INT, "attempt": _INT,
    "minutes": (int, float), "size": _INT, "sha256": _STR, "seen_at": _STR,
    "started_at": _STR, "finished_at": _STR, "error": _STR, "outputs": (list,),
    "records": _INT, "version": _STR, "requested_at": _STR, "previous_error": _STR,
    "previous_sha256": _STR,
}  # fmt: skip
_OPTIONAL_FIELDS = tuple(key for key in _STORED_TYPES if key not in ("file", "status"))


class Summary(NamedTuple):
    """What an audit reads of each record: a fraction of it, for a million records."""

    file: str
    status: str
    worker: str | None
    attempt: int | None
    minutes: float | None
    finished_at: str | None

    @classmethod
    def of(cls, record: Stored) -> Summary:
        return cls(record.file, record.status, record.worker, record.attempt, record.minutes,
                   record.finished_at)  # fmt: skip


class SummaryBlock(NamedTuple):
    """Consecutive records' audit fields, column by column: a manifest block of thousands of
    lines is read this way without an object per record."""

    files: list[str]
    statuses: list[str]
    workers: list[str | None]
    attempts: list[int | None]
    minutes: list[float | None]
    finished: list[str | None]

    @classmethod
    def of(cls, summaries: Sequence[Summary]) -> SummaryBlock:
        if not summaries:
            return cls([], [], [], [], [], [])
        columns = map(list, zip(*summaries, strict=True))
        return cls(*columns)

    def summaries(self) -> Iterator[Summary]:
        return map(Summary._make, zip(*self, strict=True))


def blocks_of(summaries: Iterable[Summary], size: int = 10_000) -> Iterator[SummaryBlock]:
    """`summaries` in blocks of up to `size`."""
    iterator = iter(summaries)
    while chunk := list(itertools.islice(iterator, size)):
        yield SummaryBlock.of(chunk)


@dataclass
class Heartbeat:
    """A worker's periodic sign of life; `age_seconds` is set when read, by the ledger's clock."""

    worker: str
    host: str = ""
    pid: int = 0
    version: str = ""
    started_at: str = ""
    state: str = "running"  # running | paused | draining
    interval: float = 5.0
    in_hand: dict[str, float] = field(default_factory=dict)  # name -> seconds in hand
    files_processed: int = 0
    total_time: float = 0.0
    sum_of_squares: float = 0.0
    # --one-per-key --on-key-failure block: key -> the failed file holding it
    blocked_keys: dict[str, str] = field(default_factory=dict)
    # --publish-in-order: key -> the file up to which everything is published (last pass)
    published: dict[str, str] = field(default_factory=dict)
    # finished files whose source holds other content now (kept): name -> sha256 or version
    changed: dict[str, str] = field(default_factory=dict)
    # --publish-in-order: why the last pass failed (passes fail until someone fixes it)
    publish_error: str | None = None
    instance: str = ""  # one process among any that share the worker id
    heartbeat_at: float | None = None
    age_seconds: float = 0.0

    @property
    def lost(self) -> bool:
        """Not refreshed for three of its own intervals: the worker is lost."""
        return self.age_seconds > STALE_AFTER_BEATS * self.interval

    @property
    def lost_for(self) -> float:
        """Seconds since the worker counted as lost (0 while it is alive)."""
        return max(self.age_seconds - STALE_AFTER_BEATS * self.interval, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def parse(cls, data: Mapping[str, Any]) -> Heartbeat | None:
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in known})
        except TypeError:
            return None  # missing fields: not one of ours


@dataclass(frozen=True)
class Holding:
    """A file whose claim is held right now (for `status`)."""

    file: str
    worker: str | None
    attempt: int | None
    age_seconds: float | None


class Hold(Protocol):
    """A held claim on one file. Its methods block (run them in a thread)."""

    name: str
    attempt: int  # set by `begin`
    lost: int  # times the claim was re-taken because the previous one vanished under us
    # The claim brought the ledger's view of what is finished up to date as of the claim:
    # the `sync` the protocol does right after a claim is not needed.
    fresh: bool

    @property
    def previous_owner(self) -> Owner | None:
        """The owner record the last holder left (a dead or crashed attempt), if any."""

    def begin(self, owner: Owner) -> int:
        """Record `owner` with the next attempt number; return that number."""

    def finish(self) -> None:
        """The file is recorded (or was already finished): remove the claim."""

    def abandon(self) -> None:
        """Give the file back without spending the attempt (shutdown, infrastructure)."""

    def release(self, error: str | None = None) -> None:
        """Give the file back and keep the attempt spent (a crash), with why."""

    def restore(self) -> None:
        """Put the previous owner back but keep holding (the process is about to end)."""

    def reassert(self) -> bool:
        """Whether the claim is still provably ours (taken again where a ledger can lose it
        under a live holder: a removed state dir); False: stop the work, a peer has it."""


class Transaction(Protocol):
    """A handler's work left uncommitted, to be committed with the file's record.

    `commit()` raises OSError when the store cannot take it (nothing committed); `close()`
    rolls back unless committed, and may be called more than once. A ledger that can commit
    it and the record at once recognises it by a protocol of its own (the PostgreSQL ledger:
    `ingestd.postgres.transaction.Joinable`); any other ledger commits it just before the
    record.
    """

    def commit(self) -> None: ...

    def close(self) -> None: ...


class Ledger(Protocol):
    """The daemon's view of the shared bookkeeping. Every method blocks: call in a thread."""

    description: str  # for logs: where the ledger lives

    def prepare(self) -> None:
        """Start-up: create and check what is needed; `StartupError` says what is wrong."""

    def close(self) -> None: ...

    def sync(self) -> None:
        """Catch up with what peers recorded since the last call (incremental)."""

    def is_finished(self, name: str) -> bool:
        """Done or failed (and not retried since), as of the last `sync`."""

    def is_done(self, name: str) -> bool:
        """Done, as of the last `sync` (a done file whose content changes is reported)."""

    def finished_count(self) -> int: ...

    def try_claim(self, name: str) -> Hold:
        """Hold `name`, or raise `Busy`/`Unusable`; OSError when the ledger is unreachable."""

    def claim_first(self, names: list[str]) -> tuple[list[tuple[str, str]], Hold | None]:
        """Try `names` in order until one is held: the names passed over with why (`BUSY`,
        or `ALREADY_FINISHED` where the ledger saw that while claiming) and the hold (None:
        none won, or the pass ended early at a name that raised: the caller tries again from
        there). `Unusable`/OSError as `try_claim`, for the first name only. A ledger that can
        try several names in one round trip does (`claim_in_order` is one at a time)."""

    def commit(
        self,
        hold: Hold,
        record: Record,
        on_written: Callable[[], None] | None = None,
        transaction: Transaction | None = None,
    ) -> bool:
        """Write `record` durably and finish `hold`; False (nothing written) if fenced out.

        `transaction`, a handler's uncommitted work, stands or falls with the record: a
        ledger on the same database commits both at once; any other commits it after its
        fencing check, just before the record, and rolls it back when fenced out. It is
        closed (rolled back unless committed) whatever happens. `on_written` runs once the
        record is durable, still inside the commit (so a worker's stats follow the ledger's
        order). OSError: nothing recorded, the hold given back without spending the attempt.
        """

    def last_record(self, name: str) -> Stored | None:
        """The newest record for `name` (rare checks)."""

    def leftovers(self) -> list[str]:
        """Finished files whose claim state was left behind by a killed worker."""

    def sweep(self, names: list[str]) -> list[str]:
        """Remove leftover claim state of finished `names` nobody holds; the names removed."""

    def write_heartbeat(self, beat: Heartbeat) -> None: ...

    def remove_heartbeat(self, worker: str) -> None: ...

    def read_heartbeat(self, worker: str) -> Heartbeat | None: ...

    def workers(self) -> list[Heartbeat]:
        """Every worker's heartbeat, aged by the ledger's clock (for metrics)."""

    def failed_count(self) -> int:
        """Files failed and not retried, as of the last `sync`."""

    def failed_names(self) -> list[str]:
        """Those files' names, whether or not the source still has them."""

    def prune_workers(self, after: float) -> list[str]:
        """Remove heartbeats of workers lost for over `after` seconds; their ids."""

    def paused(self) -> bool: ...


class RecordsInspector:
    """`summaries` and `failed_records` for an inspector whose `records` are cheap already
    (rows of a table, objects in memory): what the file ledger computes from its lines."""

    def records(self) -> Iterator[Stored]:
        raise NotImplementedError

    def summaries(self) -> Iterator[Summary]:
        return (Summary.of(record) for record in self.records())

    def summary_blocks(self) -> Iterator[SummaryBlock]:
        return blocks_of(self.summaries())

    def failed_records(self) -> dict[str, Stored]:
        return standing_failed(self.records())

    def history(self, name: str) -> list[Stored]:
        return [record for record in self.records() if record.file == name]

    def unreadable(self) -> int:
        return 0  # rows of a table are records by construction


class Inspector(Protocol):
    """What the operator commands read and change. Methods block."""

    def exists(self) -> bool:
        """Whether there is a ledger here at all."""

    def statuses(self) -> dict[str, str]:
        """Each file's current status (done wins over later records), quickly."""

    def records(self) -> Iterator[Stored]:
        """Every record in commit order, for audits."""

    def summaries(self) -> Iterator[Summary]:
        """Every record in commit order, only what an audit reads of each (cheaper than
        `records`)."""

    def summary_blocks(self) -> Iterator[SummaryBlock]:
        """`summaries` in blocks, column by column (what `verify` reads of a million)."""

    def unreadable(self) -> int:
        """Stored records that could not be read, in what was read so far (skipped, and
        named in `problems`)."""

    def failed_records(self) -> dict[str, Stored]:
        """The standing record of each file failed and not retried or done since: what
        `ingestd failed` and `retry` need, without parsing every record."""

    def history(self, name: str) -> list[Stored]:
        """One file's records, in commit order (for `explain`)."""

    def holdings(self) -> list[Holding]: ...

    def claim(self, name: str) -> tuple[bool, Owner | None]:
        """(held right now, the owner record of the current or last attempt) of one file."""

    def workers(self) -> list[Heartbeat]: ...

    def prune_workers(self, after: float) -> list[str]: ...

    def problems(self) -> list[str]:
        """Things an operator must fix (a lock path that is not a lock file)."""

    def paused(self) -> bool: ...

    def set_paused(self, paused: bool) -> bool:
        """Set or clear the fleet's pause; whether anything changed."""

    def retry(self, request: RetryRequest) -> None: ...
