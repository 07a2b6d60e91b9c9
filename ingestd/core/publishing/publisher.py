"""`--publish-in-order` on disk: staging dirs, the moves, and where the watermark lives.

A handler writes a file's outputs into `OUT/.staging/NAME/`; a publishing pass moves them into
`OUT` (renames within one filesystem: a reader never sees half a file) in the order
`publish.plan` gives, then writes the watermark. Any worker runs passes, one at a time in the
whole fleet. Every step can be repeated, so a pass killed half-way is finished by the next one,
whoever runs it: a file's outputs leave its staging dir one rename at a time, and the watermark
is written only once everything up to it is in `OUT`.

Where the watermark lives, and what makes a pass the fleet's only one, is a `MarksStore`:
`ingestd.ledgers.file.marks.FileMarks` keeps `OUT/_watermark` under a `flock`;
`ingestd.postgres.marks.PgMarks` keeps a table under a transaction's advisory lock, for the
`pg` handler, whose rows need no moving and whose fleet may share no directory.

A pass sees the names in the source and the names this worker finished since the watermark
passed them (`note_finished`): `--on-done`/`--on-failed` take a finished file out of the
source at once, and the watermark must still reach it.
"""

from __future__ import annotations

import os
import shutil
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from ingestd.contracts.ledger import DONE, FAILED, Ledger
from ingestd.contracts.source import Source
from ingestd.core.publishing.plan import Action, Marks, plan

STAGING = ".staging"


def staging_dir(out_dir: Path, name: str) -> Path:
    """Where the outputs of `name` wait to be published."""
    return out_dir / STAGING / name


class MarksStore(Protocol):
    """Where the watermark lives. Methods block; `read` and `write` are called inside
    `locked`, which makes the pass the only one in the fleet (OSError: not now)."""

    description: str

    def prepare(self) -> None:
        """Start-up: create what is needed; OSError or ValueError with what is wrong."""

    def locked(self) -> AbstractContextManager[None]: ...

    def read(self) -> Marks: ...

    def write(self, marks: Marks) -> None: ...


@dataclass(frozen=True)
class Published:
    action: Action  # PUBLISH, LATE (out of order), SKIP (failed) or DISCARD (stale staging)
    name: str
    outputs: list[str] = field(default_factory=list)  # where they are now


@dataclass
class PassReport:
    steps: list[Published] = field(default_factory=list)  # in the order they were taken
    marks: Marks = field(default_factory=Marks)
    moved: bool = False  # the watermark changed
    again: bool = False  # a file was staged during the pass: run another one


class Publisher:
    """Runs publishing passes for one worker. Blocking: call `run` in a thread.

    `out_dir`: where outputs are published from their staging dirs; None when the handler
    has none (the `pg` handler), and then a pass only moves the watermark."""

    def __init__(
        self, out_dir: Path | None, source: Source, ledger: Ledger, marks: MarksStore
    ) -> None:
        self.out_dir = out_dir
        self.staging = None if out_dir is None else out_dir / STAGING
        self.source = source
        self.ledger = ledger
        self.marks = marks
        # Files this worker finished that the watermark has not passed yet: with --on-done
        # or --on-failed they leave the source at once, and a pass must still see them (or
        # the watermark would never reach them). A peer's are its own passes' to see.
        self._finished: set[str] = set()
        self._mutex = threading.Lock()  # noted on the event loop, read in a pass's thread

    def note_finished(self, names: list[str]) -> None:
        with self._mutex:
            self._finished.update(names)

    def prepare(self) -> None:
        """Start-up: the staging dir exists and the watermark (if any) is readable.
        OSError or ValueError with what is wrong."""
        if self.staging is not None:
            self.staging.mkdir(parents=True, exist_ok=True)
        self.marks.prepare()
        with self.marks.locked():
            self.marks.read()

    def run(self) -> PassReport:
        """One pass: publish what may be published now. OSError: try again later."""
        with self.marks.locked():
            marks = self.marks.read()
            # The order of these four looks is what makes the plan safe (`plan.py`).
            before = self._staged()
            with self._mutex:
                finished = set(self._finished)
            present = finished.union(self.source.names())
            self.ledger.sync()
            now = self._staged()
            decided = plan(marks, before, present, now, self._status)
            passed = {n for n in finished if decided.marks.passed(n)}
            report = PassReport(marks=decided.marks, again=decided.again)
            moves = False
            for step in decided.steps:
                action, outputs = step.action, []
                if action is Action.LATE and self._already_published(step.name):
                    action = Action.DISCARD  # a lost claim's redo, staged after the fact
                if action in (Action.PUBLISH, Action.LATE):
                    outputs, moves = self._publish(step.name), True
                elif action is Action.DISCARD:
                    self._discard(step.name)
                report.steps.append(Published(action, step.name, outputs))
            if moves and self.out_dir is not None:
                fsync_dir(self.out_dir)  # the renames are durable before the watermark
            if decided.marks != marks:
                self.marks.write(decided.marks)
                report.moved = True
            with self._mutex:
                self._finished -= passed
            return report

    def _status(self, name: str) -> str | None:
        if self.ledger.is_done(name):
            return DONE
        return FAILED if self.ledger.is_finished(name) else None

    def _staged(self) -> set[str]:
        """Names with a staging dir."""
        if self.staging is None:
            return set()
        with os.scandir(self.staging) as entries:
            return {e.name for e in entries if not e.name.startswith(".") and e.is_dir()}

    def _dirs(self) -> tuple[Path, Path]:
        # Only a name that is staged gets here, and only an output dir has staging dirs.
        assert self.out_dir is not None and self.staging is not None
        return self.out_dir, self.staging

    def _outputs(self, name: str) -> list[Path]:
        """A staged file's outputs; a crashed writer's temp files (dot names) are not."""
        with os.scandir(self._dirs()[1] / name) as entries:
            return sorted(Path(e.path) for e in entries if not e.name.startswith("."))

    def _publish(self, name: str) -> list[str]:
        moved = []
        for path in self._outputs(name):
            target = self._dirs()[0] / path.name
            os.replace(path, target)
            moved.append(str(target))
        self._discard(name)
        return moved

    def _already_published(self, name: str) -> bool:
        outputs = self._outputs(name)
        return bool(outputs) and all((self._dirs()[0] / p.name).exists() for p in outputs)

    def _discard(self, name: str) -> None:
        shutil.rmtree(self._dirs()[1] / name, ignore_errors=True)


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (renames into it, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
