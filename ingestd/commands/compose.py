"""The composition root: the source, the ledger and the handler a worker runs with.

The one place that puts concrete backends together: `Daemon`, `Processor` and `Discovery`
receive them through their interfaces. Each kind comes from its registry
(`ingestd.sources`, `ingestd.ledgers`, `ingestd.handlers`) by the location's scheme or the
handler's name, imported only when chosen, so optional ones never weigh on a start-up that
does not use them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ingestd import ledgers, sources
from ingestd.contracts.errors import StartupError
from ingestd.contracts.handler import Handler
from ingestd.contracts.ledger import Ledger
from ingestd.contracts.source import Source
from ingestd.core.daemon import Daemon
from ingestd.core.publishing.publisher import Publisher
from ingestd.handlers import Chosen, choose
from ingestd.runtime.http import Pages
from ingestd.runtime.imports import import_object
from ingestd.runtime.logs import Log
from ingestd.runtime.settings import Settings
from ingestd.runtime.startup import probe_writable, unusable_dir
from ingestd.runtime.systemd import Notifier

CONSOLE = "ingestd.console.command:for_worker"


@dataclass
class Components:
    source: Source
    ledger: Ledger
    handler: Handler
    checks: list[Callable[[], None]] = field(default_factory=list)  # run at start-up
    publisher: Publisher | None = None  # --publish-in-order
    options: Any = None  # the handler's own
    pages: Pages | None = None  # --console


def build(settings: Settings, log: Log) -> Components:
    """What `ingestd run` needs, from its settings. `HandlerError`: a bad `--handler`;
    `StartupError`: options that cannot work together."""
    chosen = choose(settings.handler, settings)
    checks = [] if chosen.prepare is None else [chosen.prepare]
    source_kind = sources.kind(settings.source)
    source = source_kind.for_run(settings)
    checks.extend(source_kind.start_checks(source, settings))
    ledger = ledgers.kind(settings.ledger).for_run(
        settings, log, lambda: source_kind.inode(settings.source)
    )
    publisher = None
    if settings.publish_in_order:
        publisher = build_publisher(settings, source, ledger, chosen)
        checks.append(lambda: prepare_publisher(publisher, settings))
    pages = None
    if settings.console:
        # By its import string: the console is the layer above the commands.
        pages = import_object(CONSOLE)(settings, log)
    return Components(source, ledger, chosen.handle, checks, publisher, chosen.options, pages)


def build_publisher(
    settings: Settings, source: Source, ledger: Ledger, chosen: Chosen
) -> Publisher:
    """A handler whose results need no moving (`pg`'s rows) keeps its own watermark; any
    other handler's outputs are published from the output dir's staging area."""
    if chosen.watermarks is not None:
        return Publisher(None, source, ledger, chosen.watermarks())
    if settings.output_dir is None:
        raise StartupError(f"--publish-in-order on {settings.source} needs --output-dir PATH")
    from ingestd.ledgers.file.marks import FileMarks

    out = settings.output_dir
    return Publisher(out, source, ledger, FileMarks(out))


def prepare_publisher(publisher: Publisher, settings: Settings) -> None:
    """The staging dir exists and is writable, the watermark readable; `StartupError` if not."""
    if publisher.staging is None:
        # A database that is down at start-up is waited for, pass by pass (publish_failed).
        with contextlib.suppress(OSError):
            publisher.prepare()
        return
    try:
        publisher.prepare()
        probe_writable(publisher.staging)
    except OSError as exc:
        raise unusable_dir("output dir", publisher.out_dir or publisher.staging, exc) from None
    except ValueError as exc:
        raise StartupError(
            f"--publish-in-order: {exc}; move it away to start the order anew"
        ) from None


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
        options=parts.options,
        pages=parts.pages,
    )
