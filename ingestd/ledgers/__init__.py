"""Who holds what and what is finished, chosen by the `--ledger` location's scheme: the `file`
ledger (a state dir) or `postgresql://`; `memory` is for tests and has no location.

Each kind lives in its own module and is named here by import string, so psycopg is imported
only when a location names PostgreSQL. The registry is the one place that reads a ledger
location's scheme: commands and the composition root ask their kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ingestd.runtime.imports import import_object, url_scheme

if TYPE_CHECKING:
    from ingestd.contracts.ledger import Inspector, Ledger
    from ingestd.runtime.logs import Log
    from ingestd.runtime.settings import Settings

# scheme -> "module:attribute" of its `LedgerKind`; no location, a path or file:PATH is `file`.
KINDS = {
    "file": "ingestd.ledgers.file.kind:KIND",
    "postgresql": "ingestd.ledgers.postgres:KIND",
    "postgres": "ingestd.ledgers.postgres:KIND",
}


@dataclass(frozen=True)
class Where:
    """Where an operator command finds the ledger."""

    location: str | None  # --ledger, if given
    state_dir: Path | None  # --state-dir, or the source's default
    schema: str  # --pg-schema
    source_id: str  # the source's identity in the ledger


class LedgerKind(Protocol):
    """What ingestd needs to know of a kind of ledger, besides the `Ledger` it makes."""

    scheme: str
    uses_state_dir: bool  # it lives in the state dir (so it must be given or defaulted)

    def state_dir(self, location: str) -> Path | None:
        """The state dir a location names (`file:PATH`), if it names one."""
        ...

    def for_run(
        self, settings: Settings, log: Log, source_inode: Callable[[], int | None]
    ) -> Ledger: ...

    def for_operator(self, where: Where) -> Inspector: ...

    def writable(self, where: Where) -> Exception | None:
        """Why workers could not write it now (`health --ready`), or None."""
        ...

    def refuses(self, command: str) -> str | None:
        """Why an operator command of another kind does not apply here, or None."""
        ...


def scheme(location: str | None) -> str:
    """`postgresql` for `postgresql://...`; `file` for none, a path or `file:PATH`."""
    return url_scheme(location)


def kind(location: str | None) -> LedgerKind:
    """The kind of ledger `location` names; ValueError for a scheme ingestd does not know."""
    found = KINDS.get(scheme(location))
    if found is None:
        raise ValueError(f"--ledger {location}: no such kind of ledger (postgresql:// or a path)")
    chosen: LedgerKind = import_object(found)
    return chosen
