"""The composition root: the source, the ledger and the handler a worker runs with.

The one place that knows the concrete backends: `Daemon`, `Worker` and `Discovery` receive
them through their interfaces. Backends are imported here, when chosen, so optional ones never
weigh on a start-up that does not use them.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .daemon import Daemon
from .errors import StartupError
from .handlers import Handler, handler_prepare, load_handler
from .ledger import Inspector, Ledger
from .logs import Log
from .naming import printable
from .outputs import Publisher, output_dir
from .settings import Settings, is_bucket_url, is_database_url, source_identity, yes_no
from .source import MOVE, Disposal, Source
from .sources.local import LocalSource
from .startup import probe_writable, unusable_dir
from .systemd import Notifier

if TYPE_CHECKING:
    from .sources.s3 import S3Source


@dataclass
class Components:
    source: Source
    ledger: Ledger
    handler: Handler
    checks: list[Callable[[], None]] = field(default_factory=list)  # run at start-up
    publisher: Publisher | None = None  # --publish-in-order


def build(settings: Settings, log: Log) -> Components:
    """What `ingestd run` needs, from its settings. `HandlerError`: a bad `--handler`."""
    handler = load_handler(settings.handler)
    prepare = handler_prepare(settings.handler)
    checks = [] if prepare is None else [lambda: prepare(settings)]
    source = build_source(settings)
    if isinstance(source, LocalSource):
        checks.append(lambda: prepare_move_targets(source, settings))
    ledger = build_ledger(settings, log)
    publisher = None
    if settings.publish_in_order:
        publisher = build_publisher(settings, source, ledger)
        checks.append(lambda: prepare_publisher(publisher, settings))
    return Components(source, ledger, handler, checks, publisher)


def build_publisher(settings: Settings, source: Source, ledger: Ledger) -> Publisher:
    """The `pg` handler's rows need no moving: its watermark is a table in their database.
    Any other handler's outputs are published from the output dir's staging area."""
    if settings.handler == "pg":
        from .handlers.pg import conninfo
        from .pgmarks import PgMarks

        marks = PgMarks(
            conninfo(settings), settings.pg_schema, settings.pg_table or "", settings.source_id
        )
        return Publisher(None, source, ledger, marks)
    return Publisher(output_dir(settings), source, ledger)


def prepare_publisher(publisher: Publisher, settings: Settings) -> None:
    """The staging dir exists and is writable, the watermark readable; `StartupError` if not."""
    if publisher.staging is None:
        # A database that is down at start-up is waited for, pass by pass (publish_failed).
        with contextlib.suppress(OSError):
            publisher.prepare()
        return
    if settings.source_url is not None and settings.output_dir is None:
        raise StartupError(f"--publish-in-order on {settings.source_url} needs --output-dir PATH")
    try:
        publisher.prepare()
        probe_writable(publisher.staging)
    except OSError as exc:
        raise unusable_dir("output dir", output_dir(settings), exc) from None
    except ValueError as exc:
        raise StartupError(
            f"--publish-in-order: {exc}; move it away to start the order anew"
        ) from None


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


def build_daemon(settings: Settings, log: Log, notifier: Notifier | None = None) -> Daemon:
    """A daemon with everything `build` makes. `HandlerError`: a bad `--handler`."""
    parts = build(settings, log)
    return Daemon(
        settings,
        parts.source,
        parts.ledger,
        parts.handler,
        log,
        notifier,
        checks=parts.checks,
        publisher=parts.publisher,
    )


def build_source(settings: Settings) -> Source:
    if settings.source_url is not None:
        return bucket(settings.source_url, settings)
    return _local(settings.data_dir, settings.state_dir, settings.watch)


def bucket(url: str, settings: Settings | None = None) -> S3Source:
    """An s3:// source; without settings (operator commands), the INGESTD_S3_* and AWS_*
    variables alone say where the server is."""
    from .sources.s3 import S3Source, make_client

    if settings is None:
        endpoint = os.environ.get("INGESTD_S3_ENDPOINT_URL") or None
        region = os.environ.get("INGESTD_S3_REGION") or None
        try:
            path_style = yes_no(os.environ.get("INGESTD_S3_PATH_STYLE") or "no")
        except ValueError:
            path_style = False  # `run` refuses a bad value; a status probe must still answer
    else:
        endpoint, region = settings.s3_endpoint_url, settings.s3_region
        path_style = settings.s3_path_style
    return S3Source(url, make_client(endpoint, region, path_style))


def _local(data_dir: Path, state_dir: Path, events: bool = True) -> LocalSource:
    inside = state_dir.parent == data_dir  # hidden from scans
    return LocalSource(
        data_dir, hide=state_dir.name if inside else None, events=events, clock_dir=state_dir
    )


def build_ledger(settings: Settings, log: Log) -> Ledger:
    if is_database_url(settings.ledger):
        from .ledgers.postgres import PostgresLedger

        # The lease outlives a few missed heartbeats; a dead session is seen sooner.
        lease = max(3 * settings.heartbeat_interval, 10.0)
        return PostgresLedger(
            str(settings.ledger),
            settings.pg_schema,
            settings.worker_id,
            source=settings.source_id,
            lease=lease,
        )
    from .ledgers.file import FileLedger
    from .ledgers.file.ledger import RECREATE_GRACE

    state_dir = settings.state_dir

    def bad_line(offset: int, line: bytes) -> None:
        head = printable(line[:60].decode("ascii", "replace"))
        log.warning("manifest_bad_line", offset=offset, length=len(line), head=head)

    def source_inode() -> int | None:
        if settings.source_url is not None or settings.fleet:
            return None
        try:
            return os.stat(settings.data_dir).st_ino
        except OSError:
            return None

    return FileLedger(
        state_dir,
        source=settings.source_id,
        source_inode=source_inode,
        on_bad_line=bad_line,
        on_replaced=lambda: log.warning(
            "manifest_replaced", path=str(state_dir / "manifest.jsonl")
        ),
        on_recreated=lambda: log.error(
            "state_dir_recreated", state_dir=str(state_dir), claims_resume_in=RECREATE_GRACE
        ),
    )


def operator_view(
    data_dir: Path | str,
    state_dir: Path,
    ledger: str | None = None,
    schema: str = "ingestd",
    fleet: str | None = None,
) -> tuple[Source, Inspector]:
    """What the operator commands read: the source (what is there) and the ledger's state."""
    source = (
        bucket(str(data_dir)) if is_bucket_url(str(data_dir)) else _local(Path(data_dir), state_dir)
    )
    if is_database_url(ledger):
        from .ledgers.postgres import PostgresInspector

        return source, PostgresInspector(
            str(ledger), schema, source=source_identity(data_dir, fleet)
        )
    from .ledgers.file import FileInspector

    return source, FileInspector(state_dir)
