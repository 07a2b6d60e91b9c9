"""The file ledger as `ingestd.ledgers` knows it: made from settings, or read by an operator."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ingestd.contracts.naming import printable
from ingestd.ledgers import Where
from ingestd.ledgers.file.ledger import RECREATE_GRACE, FileInspector, FileLedger
from ingestd.runtime.logs import Log
from ingestd.runtime.settings import Settings
from ingestd.runtime.startup import probe_writable


class FileKind:
    scheme = "file"
    uses_state_dir = True

    def state_dir(self, location: str) -> Path:
        return Path(location.removeprefix("file:"))

    def for_run(
        self, settings: Settings, log: Log, source_inode: Callable[[], int | None]
    ) -> FileLedger:
        state_dir = settings.state_dir
        if state_dir is None:
            raise ValueError("the file ledger needs a state dir")

        def bad_line(offset: int, line: bytes) -> None:
            head = printable(line[:60].decode("ascii", "replace"))
            log.warning("manifest_bad_line", offset=offset, length=len(line), head=head)

        inode = (lambda: None) if settings.fleet else source_inode
        return FileLedger(
            state_dir,
            source=settings.source_id,
            source_inode=inode,
            on_bad_line=bad_line,
            on_replaced=lambda: log.warning(
                "manifest_replaced", path=str(state_dir / "manifest.jsonl")
            ),
            on_recreated=lambda: log.error(
                "state_dir_recreated", ledger=str(state_dir), claims_resume_in=RECREATE_GRACE
            ),
        )

    def for_operator(self, where: Where) -> FileInspector:
        return FileInspector(self._state(where))

    def writable(self, where: Where) -> Exception | None:
        try:
            probe_writable(self._state(where))
        except OSError as exc:
            return exc
        return None

    def refuses(self, command: str) -> str | None:
        return None

    def _state(self, where: Where) -> Path:
        # The operator's arguments were resolved once (`--ledger file:PATH` included).
        if where.state_dir is None:
            raise ValueError("the file ledger needs a state dir")
        return where.state_dir


KIND = FileKind()
