"""`--bad-rows reject`: a file's bad rows kept apart, its good rows loaded, in one transaction.

Rows go into `COPY` in segments (32 to 5,000 rows: halved at each bad row, doubled after each
clean segment), each under a savepoint. A row the decoder refused never
reaches the server. When the server refuses one, its error names the line of the segment; the
segment is rolled back, that row is rejected, the rows before it (known good) are sent again
on their own, and the rows after it start the next segment. So each bad row costs a round trip
and at most a segment of rows sent again. A row psycopg refuses before sending (a NUL in a
text value) is rejected the same way. An error the server gives without a line (a deferred
constraint at commit) fails the file, as `--bad-rows fail` would.

Past the limit (`reject:N`, checked as rows are refused; `reject:P%`, checked at the end,
of all the rows seen) the file fails with the count and the first bad row, nothing loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ingestd.contracts.errors import BadInput
from ingestd.postgres.errors import BAD_INPUT, classify, copy_line, with_context
from ingestd.postgres.rejects import Rejected
from ingestd.runtime.settings import BadRows

SEGMENT = 5000  # rows per savepoint at most: a bad row costs at most this many rows sent again
_SEGMENT_LINE = re.compile(r"(\(COPY [^,]*), line \d+")
SMALLEST = 32  # ... and at least: where bad rows are frequent, segments shrink to this


@dataclass(frozen=True)
class Row:
    """One row of a file on its way to COPY."""

    line: int  # where it starts in the file
    payload: bytes | list[Any] | None  # a line of COPY's text or CSV format, or values
    raw: bytes | None = None  # as the file had it; None: rendered from the payload if refused
    error: str | None = None  # refused before the server saw it
    # Lines the server counts for it: a CSV record with line breaks inside quotes counts
    # each (PostgreSQL's COPY counts physical lines there).
    lines: int = 1


@dataclass
class Loaded:
    rows: int = 0
    rejected: int = 0
    first: Rejected | None = None


class _Refused(Exception):
    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def copy_rejecting(
    cursor: Any,
    statement: Any,
    rows: Iterator[Row],
    policy: BadRows,
    render: Callable[[Any], bytes],
    keep: Callable[[list[Rejected]], None],
) -> Loaded:
    """Load `rows` through `statement`, rejecting bad ones (`keep` stores them, between
    segments); `BadInput` past the policy's limit."""
    return _Rejecting(cursor, statement, rows, policy, render, keep).run()


@dataclass
class _Rejecting:
    cursor: Any
    statement: Any
    rows: Iterator[Row]
    policy: BadRows
    render: Callable[[Any], bytes]
    keep: Callable[[list[Rejected]], None]
    done: Loaded = field(default_factory=Loaded)
    pending: list[Rejected] = field(default_factory=list)
    exhausted: bool = False
    # Rows a segment pulls: halved at each refused row, doubled at each clean segment, so
    # frequent bad rows do not resend thousands of rows each.
    limit: int = SEGMENT

    def run(self) -> Loaded:
        # Work to do, in order: (rows to send first, whether to pull new rows after them).
        todo: list[tuple[list[Row], bool]] = []
        while todo or not self.exhausted:
            first, pull = todo.pop(0) if todo else ([], True)
            segment: list[Row] = []
            self.cursor.execute("SAVEPOINT ingestd_rows")
            refused = self._segment(segment, first, pull)
            if refused is None:
                self.cursor.execute("RELEASE SAVEPOINT ingestd_rows")
                self.done.rows += len(segment)
                self.limit = min(SEGMENT, self.limit * 2) if pull else self.limit
                self._flush()
                continue
            index, message = refused
            self.limit = max(SMALLEST, self.limit // 2)
            self.cursor.execute("ROLLBACK TO SAVEPOINT ingestd_rows")
            self._reject(segment[index], message)
            parts = ((segment[:index], False), (segment[index + 1 :], pull))
            todo[:0] = [(part, more) for part, more in parts if part or more]
        self._flush()
        if self.policy.over(self.done.rejected, self.done.rows + self.done.rejected):
            raise _over(self.policy, self.done)
        return self.done

    def _segment(self, segment: list[Row], first: list[Row], pull: bool) -> tuple[int, str] | None:
        """COPY one segment: `first`, then new rows if `pull`. None if the server took it
        all, else (the index of the row it refused, why)."""
        import psycopg

        try:
            with self.cursor.copy(self.statement) as sink:
                for row in first:
                    _send(sink, segment, row)
                while pull and not self.exhausted and len(segment) < self.limit:
                    pulled = next(self.rows, None)
                    if pulled is None:
                        self.exhausted = True
                    elif pulled.error is not None:
                        self._reject(pulled, pulled.error)
                    else:
                        _send(sink, segment, pulled)
        except _Refused as refused:
            return refused.index, str(refused)
        except psycopg.Error as exc:
            found = _row_at(segment, copy_line(exc))
            if classify(exc) != BAD_INPUT or found is None:
                raise
            # The server's line counts within the segment: the row's own line is the file's.
            return found, _SEGMENT_LINE.sub(r"\1", with_context(exc), count=1)
        return None

    def _reject(self, row: Row, error: str) -> None:
        raw = row.raw if row.raw is not None else self.render(row.payload)
        refused = Rejected(row.line, error, raw)
        self.pending.append(refused)
        done = self.done
        done.rejected += 1
        done.first = done.first or refused
        if self.policy.most is not None and self.policy.over(done.rejected, done.rows):
            raise _over(self.policy, done)

    def _flush(self) -> None:
        if self.pending:
            self.keep(self.pending)
            self.pending = []


def _row_at(segment: list[Row], line: int | None) -> int | None:
    """The index of the row the server's line number falls in, or None."""
    if line is None or line < 1:
        return None
    for index, row in enumerate(segment):
        line -= row.lines
        if line <= 0:
            return index
    return None


def _send(sink: Any, segment: list[Row], row: Row) -> None:
    import psycopg

    segment.append(row)
    try:
        if type(row.payload) is list:
            sink.write_row(row.payload)
        else:
            sink.write(row.payload)
    except psycopg.Error as exc:
        if getattr(exc, "sqlstate", None):
            raise  # the server's: its context names the line
        raise _Refused(len(segment) - 1, str(exc)) from None


def _over(policy: BadRows, done: Loaded) -> BadInput:
    first = done.first
    where = f"; the first at line {first.line}: {first.error}" if first else ""
    return BadInput(f"{done.rejected} bad rows, more than --bad-rows {policy} allows{where}")
