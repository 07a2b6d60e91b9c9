"""Where files come from, chosen by the location's scheme: a directory (local or NFS) or
`s3://BUCKET[/PREFIX]`; `memory` is for tests and has no location.

Each kind lives in its own module and is named here by import string, so an optional backend
(boto3 for buckets) is imported only when a location names it. The registry is the one place
that reads a location's scheme: commands and the composition root ask their kind.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ingestd.runtime.imports import import_object, url_scheme

if TYPE_CHECKING:
    from ingestd.contracts.source import Source
    from ingestd.runtime.settings import Settings

# scheme -> "module:attribute" of its `SourceKind`; a location with no scheme is a directory.
KINDS = {
    "file": "ingestd.sources.local:KIND",
    "s3": "ingestd.sources.s3:KIND",
}


class SourceKind(Protocol):
    """What ingestd needs to know of a kind of source, besides the `Source` it makes."""

    scheme: str
    has_directory: bool  # a place on a filesystem: state and outputs may default to it
    exact_mtimes: bool  # its signatures hold a modification time (a bucket's, an ETag)
    rescan_interval: float | None  # its default, when not the daemon's

    def parse(self, location: str) -> str:
        """The location as settings hold it (an absolute path, a URL); ValueError if bad."""
        ...

    def identity(self, location: str) -> str:
        """The source's identity in a ledger, the same from every host that sees it."""
        ...

    def default_state_dir(self, location: str) -> Path | None: ...

    def default_output_dir(self, location: str) -> Path | None: ...

    def inode(self, location: str) -> int | None:
        """What tells one directory reached by two paths; None where there is none."""
        ...

    def for_run(self, settings: Settings) -> Source: ...

    def start_checks(self, source: Source, settings: Settings) -> list[Callable[[], None]]:
        """What `run` checks before it starts (StartupError with the fix)."""
        ...

    def for_operator(self, location: str, state_dir: Path | None) -> Source:
        """The source as an operator command reads it (no events, no settings)."""
        ...

    def problem(self, location: str) -> str | None:
        """Why an operator command cannot look at it (a typo must not look empty), or None."""
        ...

    def holds_path(self, location: str, path: str) -> bool:
        """Whether `path` names a file in the source itself (then its base name is meant)."""
        ...


def scheme(location: str) -> str:
    """`s3` for `s3://...`; `file` for a path or `file:PATH`."""
    return url_scheme(location)


def kind(location: str) -> SourceKind:
    """The kind of source `location` names; ValueError for a scheme ingestd does not know."""
    found = KINDS.get(scheme(location))
    if found is None:
        known = ", ".join(f"{s}://" for s in KINDS if s != "file")
        raise ValueError(f"{location}: no such kind of source (a directory, or {known})")
    chosen: SourceKind = import_object(found)
    return chosen


def identity(location: str | Path, fleet: str | None = None) -> str:
    """The source's identity in a ledger: `fleet:NAME` when given, else its kind's.

    Hosts that reach one directory by different paths (NFS mounted at different places) must
    give the same `--fleet NAME`, or each would be a source of its own.
    """
    if fleet:
        return f"fleet:{fleet}"
    text = os.fspath(location)
    return kind(text).identity(text)
