"""The composition root: the source, the ledger and the handler a worker runs with.

The one place that knows the concrete backends: `Daemon`, `Worker` and `Discovery` receive
them through their interfaces. Backends are imported here, when chosen, so optional ones never
weigh on a start-up that does not use them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .daemon import Daemon
from .handlers import Handler, handler_prepare, load_handler
from .ledger import Inspector, Ledger
from .logs import Log
from .naming import printable
from .settings import Settings, is_database_url
from .source import Source
from .systemd import Notifier


@dataclass
class Components:
    source: Source
    ledger: Ledger
    handler: Handler
    checks: list[Callable[[], None]] = field(default_factory=list)  # run at start-up


def build(settings: Settings, log: Log) -> Components:
    """What `ingestd run` needs, from its settings. `HandlerError`: a bad `--handler`."""
    handler = load_handler(settings.handler)
    prepare = handler_prepare(settings.handler)
    checks = [] if prepare is None else [lambda: prepare(settings)]
    return Components(build_source(settings), build_ledger(settings, log), handler, checks)


def build_daemon(settings: Settings, log: Log, notifier: Notifier | None = None) -> Daemon:
    """A daemon with everything `build` makes. `HandlerError`: a bad `--handler`."""
    parts = build(settings, log)
    return Daemon(
        settings, parts.source, parts.ledger, parts.handler, log, notifier, checks=parts.checks
    )


def build_source(settings: Settings) -> Source:
    return _local(settings.data_dir, settings.state_dir, settings.watch)


def _local(data_dir: Path, state_dir: Path, events: bool = True) -> Source:
    from .sources.local import LocalSource

    inside = state_dir.parent == data_dir  # hidden from scans
    return LocalSource(data_dir, hide=state_dir.name if inside else None, events=events)


def build_ledger(settings: Settings, log: Log) -> Ledger:
    if is_database_url(settings.ledger):
        from .ledgers.postgres import PostgresLedger

        # The lease outlives a few missed heartbeats; a dead session is seen sooner.
        lease = max(3 * settings.heartbeat_interval, 10.0)
        return PostgresLedger(str(settings.ledger), settings.pg_schema, settings.worker_id, lease)
    from .ledgers.file import FileLedger

    state_dir = settings.state_dir

    def bad_line(offset: int, line: bytes) -> None:
        head = printable(line[:60].decode("ascii", "replace"))
        log.warning("manifest_bad_line", offset=offset, length=len(line), head=head)

    return FileLedger(
        state_dir,
        on_bad_line=bad_line,
        on_replaced=lambda: log.warning(
            "manifest_replaced", path=str(state_dir / "manifest.jsonl")
        ),
        on_recreated=lambda: log.error("state_dir_recreated", state_dir=str(state_dir)),
    )


def operator_view(
    data_dir: Path, state_dir: Path, ledger: str | None = None, schema: str = "ingestd"
) -> tuple[Source, Inspector]:
    """What the operator commands read: the source (what is there) and the ledger's state."""
    if is_database_url(ledger):
        from .ledgers.postgres import PostgresInspector

        return _local(data_dir, state_dir), PostgresInspector(str(ledger), schema)
    from .ledgers.file import FileInspector

    return _local(data_dir, state_dir), FileInspector(state_dir)
