"""Pure: `--publish-in-order`, which finished files' outputs may be published now, per key.

A file's outputs wait in a staging area until every earlier file of its key is finished; then
they are published (moved into the output dir), oldest first, and the key's watermark moves
up to that file. A failed file has nothing to publish: it is skipped in the order, listed, and
does not hold back the files after it. The watermark never moves backwards and never past a
file that is not finished.

`plan` decides from what one pass knows, gathered in this order (`publisher.py` does the I/O):
the names staged at the start (`staged_before`), the names present in the source, the
ledger's statuses, the names staged at the end (`staged_now`). A file staged before the pass
began had every earlier file of its key already in the source (or finished, and then either
staged or without outputs), so the pass knows them all. A file staged during the pass may have
an earlier neighbour the listing missed: it waits for the next pass (`again`).

A file older than its key's watermark arrived late (`late_file`): it is published when it is
done, out of order, and reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ingestd.contracts.ledger import DONE, FAILED
from ingestd.contracts.naming import key_of, parse, sort_key

MARKS_VERSION = 1


class Action(Enum):
    PUBLISH = "publish"  # move the staged outputs into the output dir, in this order
    SKIP = "skip"  # failed: nothing published, listed in the marks; staging (if any) removed
    LATE = "late"  # done, older than the watermark, outputs staged: publish, out of order
    DISCARD = "discard"  # staged outputs of a file already published or failed: remove them


@dataclass(frozen=True)
class Step:
    action: Action
    name: str


@dataclass
class Marks:
    """The `_watermark` file: per key, the newest file up to which everything is published,
    and the failed files skipped on the way."""

    published: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self, updated_at: str) -> bytes:
        keys = sorted(self.published.keys() | self.skipped.keys())
        document = {
            "version": MARKS_VERSION,
            "updated_at": updated_at,
            "keys": {
                key: {"published": self.published.get(key), "skipped": self.skipped.get(key, [])}
                for key in keys
            },
        }
        return json.dumps(document, indent=1, ensure_ascii=False).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> Marks:
        """ValueError when the content is not a watermark this version wrote."""
        try:
            document: Any = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("version") != MARKS_VERSION:
            raise ValueError(f"not a version {MARKS_VERSION} watermark")
        keys = document.get("keys")
        if not isinstance(keys, dict):
            raise ValueError("no keys object")
        marks = cls()
        for key, entry in keys.items():
            if not isinstance(entry, dict):
                raise ValueError(f"key {key!r}: not an object")
            published, skipped = entry.get("published"), entry.get("skipped", [])
            if published is not None:
                if not isinstance(published, str) or parse(published) is None:
                    raise ValueError(f"key {key!r}: {published!r} is not a data-file name")
                marks.published[key] = published
            if not isinstance(skipped, list) or not all(isinstance(n, str) for n in skipped):
                raise ValueError(f"key {key!r}: skipped is not a list of names")
            if skipped:
                marks.skipped[key] = list(skipped)
        return marks

    def passed(self, name: str) -> bool:
        """Whether the watermark of `name`'s key is at or past it."""
        mark = self.published.get(key_of(name))
        return mark is not None and sort_key(name) <= sort_key(mark)

    def copy(self) -> Marks:
        return Marks(dict(self.published), {k: list(v) for k, v in self.skipped.items()})


@dataclass
class Plan:
    steps: list[Step]
    marks: Marks  # after the steps
    again: bool  # a file was staged during the pass: look again at once


def plan(
    marks: Marks,
    staged_before: Iterable[str],
    present: Iterable[str],
    staged_now: Iterable[str],
    status: Callable[[str], str | None],
) -> Plan:
    """The steps of one pass, in the order they must be taken. `status`: the ledger's
    `done`/`failed` for a name, None when it is not finished."""
    before = set(staged_before)
    now = set(staged_now)
    per_key: dict[str, list[str]] = {}
    for name in now | set(present):
        if parse(name) is not None:
            per_key.setdefault(key_of(name), []).append(name)
    after = marks.copy()
    steps: list[Step] = []
    again = False
    for key in sorted(per_key):
        names = sorted(per_key[key], key=sort_key)
        mark = marks.published.get(key)
        stopped = False
        for name in names:
            state = status(name)
            staged = name in now
            if mark is not None and sort_key(name) <= sort_key(mark):
                # Behind the watermark: a late file, or what a peer left behind.
                if staged and state == DONE:
                    steps.append(Step(Action.LATE, name))
                    if name in after.skipped.get(key, []):  # failed once, retried, done
                        after.skipped[key].remove(name)
                elif staged and state == FAILED:
                    steps.append(Step(Action.DISCARD, name))
                if state == FAILED and name not in after.skipped.get(key, []):
                    after.skipped.setdefault(key, []).append(name)
                continue
            if stopped:
                continue
            if state == DONE:
                if staged and name not in before:
                    again = stopped = True  # staged during this pass: the next one decides
                    continue
                if staged:
                    steps.append(Step(Action.PUBLISH, name))
                after.published[key] = name
            elif state == FAILED:
                if staged:
                    steps.append(Step(Action.DISCARD, name))
                steps.append(Step(Action.SKIP, name))
                after.published[key] = name
                if name not in after.skipped.get(key, []):
                    after.skipped.setdefault(key, []).append(name)
            else:
                stopped = True  # not finished: the key waits here
    return Plan(steps, after, again)
