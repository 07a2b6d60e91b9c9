"""Which handler `--handler` names: a registry of import strings, and the user's own code.

`choose` turns `--handler` into a handler: `simulate` (the default: sleep for the minutes the
file says), `tsv` (JSON objects to PostgreSQL COPY text), `pg` (JSON objects into a table), or
`package.module:callable` for the user's own code; a plain function runs in the handlers' own
threads, a coroutine function on the event loop. The handler API itself (`Job`, `Outcome`)
is `ingestd.contracts.handler`.

A handler module may declare `OPTIONS`, a dataclass of the settings it reads (by field name,
or built by its `from_settings(settings)`): the job carries them as `job.options`. It may
define `prepare(options)` to check its environment at start-up (raise `StartupError`), and
`watermarks(options)` when its results are published in place rather than moved (a table).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ingestd.contracts.errors import BadInput, RetryLater, StartupError
from ingestd.contracts.handler import HEAD_BYTES, Handler, Job, Outcome
from ingestd.core.publishing.publisher import MarksStore
from ingestd.runtime.settings import Settings

__all__ = [
    "HEAD_BYTES",
    "BadInput",
    "Handler",
    "Job",
    "Outcome",
    "RetryLater",
    "StartupError",
    "choose",
    "load_handler",
]

# The built-in handlers, by import string: nothing is imported until one is chosen.
REGISTRY = {
    "simulate": "ingestd.handlers.simulate:handle",
    "tsv": "ingestd.handlers.tsv:handle",
    "pg": "ingestd.handlers.pg:handle",
}


@dataclass(frozen=True)
class Chosen:
    handle: Handler
    options: Any  # what the handler's OPTIONS declares, from the settings; None if nothing
    prepare: Callable[[], None] | None  # its start-up check
    # Where --publish-in-order keeps the watermark when the handler's results need no moving
    # (its `watermarks(options)`); None: outputs are files, published from the output dir.
    watermarks: Callable[[], MarksStore] | None = None


class HandlerError(Exception):
    """`--handler` names something that cannot be used (shown to the user, exit 2)."""


def load_handler(spec: str) -> Handler:
    """The handler `--handler` names; `HandlerError` (exit 2) if it cannot be used."""
    return _load(spec)[0]


def choose(spec: str, settings: Settings) -> Chosen:
    """The handler `--handler` names, its options and its start-up check. `HandlerError`
    (exit 2) if it cannot be used; `StartupError` if its options are wrong."""
    handle, module = _load(spec)
    _refuse_load_options(spec, settings)
    options = options_from(getattr(module, "OPTIONS", None), settings)
    prepare = getattr(module, "prepare", None)
    check = (lambda: prepare(options)) if callable(prepare) else None
    marks = getattr(module, "watermarks", None)
    return Chosen(handle, options, check, (lambda: marks(options)) if callable(marks) else None)


# What --handler pg reads of a file; a handler of one's own may read them too (by OPTIONS).
LOAD_OPTIONS = ("format", "csv_header", "csv_delimiter", "csv_null", "bad_rows")


def _refuse_load_options(spec: str, settings: Settings) -> None:
    """The built-in handlers other than pg read no formats: an option for them is a mistake."""
    if spec not in ("simulate", "tsv"):
        return
    defaults = {f.name: f.default for f in dataclasses.fields(settings)}
    given = [name for name in LOAD_OPTIONS if getattr(settings, name) != defaults[name]]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise StartupError(f"{flags}: for --handler pg, not --handler {spec}")


def options_from(declared: Any, settings: Settings) -> Any:
    """The options a handler module declares (`OPTIONS`, a dataclass), from the settings: by
    its `from_settings(settings)` if it has one, else field by field, by name."""
    if declared is None:
        return None
    build = getattr(declared, "from_settings", None)
    if callable(build):
        return build(settings)
    if not (isinstance(declared, type) and dataclasses.is_dataclass(declared)):
        raise HandlerError(f"OPTIONS of a handler must be a dataclass, not {declared!r}")
    known = {f.name for f in dataclasses.fields(settings)}
    wanted = [f.name for f in dataclasses.fields(declared)]
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise HandlerError(f"the handler's OPTIONS names unknown settings: {', '.join(unknown)}")
    return declared(**{name: getattr(settings, name) for name in wanted})


def _load(spec: str) -> tuple[Handler, ModuleType]:
    module_name, _, attribute = REGISTRY.get(spec, spec).partition(":")
    if not module_name or not attribute:
        raise HandlerError(f"--handler {spec!r}: use simulate, tsv, pg or package.module:callable")
    # `python -m ingestd` finds modules in the current directory; the `ingestd` script should
    # too, or a handler that works in one would not import in the other.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module may fail in any way while importing
        raise HandlerError(f"--handler {spec!r}: cannot import {module_name}: {exc}") from exc
    target = getattr(module, attribute, None)
    if not callable(target):
        raise HandlerError(f"--handler {spec!r}: {module_name} has no callable {attribute}")
    if spec in REGISTRY:
        return target, module  # ours: already an async callable returning an Outcome
    return _adapt(target), module


def _adapt(target: Callable[..., Any]) -> Handler:
    """Wrap a user callable: async ones are awaited, sync ones run in the handlers' threads."""
    is_async = inspect.iscoroutinefunction(target) or inspect.iscoroutinefunction(
        getattr(target, "__call__", None)  # noqa: B004 - async __call__ objects
    )

    async def handler(job: Job) -> Outcome:
        result = await target(job) if is_async else await job.to_thread(target, job)
        return to_outcome(result)

    return handler


def to_outcome(result: Any) -> Outcome:
    """Accept an Outcome, a number of minutes, or a dict of Outcome fields."""
    if isinstance(result, Outcome):
        return result
    if isinstance(result, int | float) and not isinstance(result, bool):
        return Outcome(minutes=float(result))
    if isinstance(result, dict):
        return Outcome(**result)
    raise TypeError(f"handler returned {type(result).__name__}; expected Outcome, number or dict")
