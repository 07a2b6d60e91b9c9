"""The `tsv` handler: a file of JSON objects becomes `OUT/NAME.tsv` for PostgreSQL `COPY`.

Input: JSON objects as JSON Lines or simply concatenated with any whitespace between them,
UTF-8, optionally compressed (gzip, zstd, bz2 or xz: by magic bytes). It is streamed, never held
whole. Output: PostgreSQL `COPY ... FROM` text format: tab-separated, `\\N` for null or missing,
`t`/`f` for booleans, nested values as compact JSON, and backslash, tab, newline and carriage
return escaped as COPY expects. The TSV is written to a temp file in the output dir, fsynced and
renamed into place: a crash never leaves a partial TSV, and a redo replaces it identically.

Without `--columns`, the columns are the union of top-level keys in first-seen order, which
takes a first pass over the input to learn them.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ingestd.contracts.errors import BadInput, StartupError
from ingestd.handlers import Job, Outcome
from ingestd.handlers.content import CHUNK, Opener, open_content
from ingestd.runtime.settings import Settings
from ingestd.runtime.startup import probe_writable, unusable_dir

MAX_VALUE_CHARS = 64 << 20  # one JSON value larger than this is bad input, not a memory hog
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace; matches at any position
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
compact_json = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_quote = json.encoder.encode_basestring


class JsonNumber(str):
    """A JSON number with a fraction or exponent, kept as written (`0.10`, `1e-7`, `-0.0`).

    A float would round it to 17 digits and respell it; a `numeric` column must get the
    exact number, and a text column the text the provider wrote.
    """

    __slots__ = ()


def _not_json(token: str) -> Any:
    # Python's json reads NaN and Infinity, which no JSON writer may produce: a value a
    # provider's JSON library could not have written is bad input, on every path alike.
    raise BadInput(f"{token} is not JSON (no JSON number is NaN or infinite)")


_decoder = json.JSONDecoder(parse_constant=_not_json)
# Every number as its text: `-0`, `1e-400` and `0.10` reach PostgreSQL as written, which
# parses them for the column's type exactly as the fast path's rows are parsed.
_exact_decoder = json.JSONDecoder(
    parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=_not_json
)


def exact_json(value: Any) -> str:
    """Compact JSON text of a decoded value, with `JsonNumber`s written as they came."""
    kind = type(value)
    if kind is JsonNumber:
        return str.__str__(value)
    if kind is dict:
        return "{" + ",".join(_quote(k) + ":" + exact_json(v) for k, v in value.items()) + "}"
    if kind is list:
        return "[" + ",".join(exact_json(v) for v in value) + "]"
    return compact_json(value)


def iter_objects(stream: IO[bytes], exact: bool = False) -> Iterator[dict[str, Any]]:
    """The JSON objects of a byte stream, one at a time; `BadInput` says where it broke.

    `exact`: numbers with a fraction or exponent come as `JsonNumber`s (their text), not floats.
    """
    decoder = _exact_decoder if exact else _decoder
    # utf-8-sig: a byte order mark at the very start is skipped (editors on Windows add one).
    text = codecs.getincrementaldecoder("utf-8-sig")()
    buffer = ""
    consumed = 0  # characters before `buffer`, for error positions
    line = 1
    eof = False
    while True:
        if not eof:
            chunk = stream.read(CHUNK)
            try:
                buffer += text.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                raise BadInput(f"not UTF-8 near byte {exc.start} of a chunk") from None
            eof = not chunk
        position = 0
        while True:
            stripped = _WHITESPACE.match(buffer, position).end()  # type: ignore[union-attr]
            line += buffer.count("\n", position, stripped)
            position = stripped
            if position >= len(buffer):
                break
            try:
                value, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError as exc:
                if not eof:
                    break  # maybe incomplete: read more
                raise BadInput(
                    f"malformed JSON at line {line}, character {consumed + exc.pos}: {exc.msg}"
                ) from None
            if not isinstance(value, dict):
                raise BadInput(f"line {line}: expected a JSON object, got {type(value).__name__}")
            line += buffer.count("\n", position, end)
            position = end
            yield value
        consumed += position
        buffer = buffer[position:]
        if eof and not buffer:
            return
        if len(buffer) > MAX_VALUE_CHARS:
            raise BadInput(f"line {line}: one JSON value is over {MAX_VALUE_CHARS} characters")


def decode_object(text: str) -> dict[str, Any]:
    """One JSON object with exact numbers (a line of JSON Lines); `BadInput` if it is not."""
    try:
        value, end = _exact_decoder.raw_decode(text, _WHITESPACE.match(text).end())  # type: ignore[union-attr]
    except json.JSONDecodeError as exc:
        raise BadInput(f"malformed JSON at character {exc.pos}: {exc.msg}") from None
    if _WHITESPACE.match(text, end).end() != len(text):  # type: ignore[union-attr]
        raise BadInput(f"malformed JSON at character {end}: more after the object")
    if not isinstance(value, dict):
        raise BadInput(f"expected a JSON object, got {type(value).__name__}")
    return value


def field_text(value: Any) -> str:
    """One value as a COPY text field."""
    kind = type(value)
    text: str
    if kind is str:
        text = value
    elif kind is JsonNumber:
        return str.__str__(value)  # digits, sign, point, exponent: nothing to escape
    elif value is None:
        return "\\N"
    elif kind is bool:
        return "t" if value else "f"
    elif kind is int:
        return str(value)
    elif kind is float:
        return repr(value) if math.isfinite(value) else compact_json(value)  # NaN, Infinity
    else:
        text = exact_json(value)
    if "\x00" in text:
        raise BadInput("a value holds a NUL character, which PostgreSQL text cannot store")
    # Most fields need no escaping; four C-speed scans beat one translate that copies.
    if "\\" in text or "\t" in text or "\n" in text or "\r" in text:
        return text.translate(_ESCAPES)
    return text


def row_text(record: dict[str, Any], columns: tuple[str, ...] | list[str]) -> str:
    return "\t".join(field_text(record.get(column)) for column in columns) + "\n"


def learn_columns(content: Path | Opener) -> list[str]:
    keys: dict[str, None] = {}
    with open_content(content) as (stream, _):
        for record in iter_objects(stream):
            keys.update(dict.fromkeys(record))
    return list(keys)


def convert(
    content: Path | Opener,
    out_dir: Path,
    columns: tuple[str, ...] | None,
    header: bool,
    name: str | None = None,
) -> tuple[Path, int, int, str]:
    """Write OUT/NAME.tsv; return (path, records, input bytes, input sha256). Blocking.

    `content` is a path or a function that opens the input (a job's `open`); `name` is the
    input's name (a path's own by default).
    """
    if name is None:
        if not isinstance(content, Path):
            raise TypeError("convert: give the name of an input that is not a path")
        name = content.name
    names = list(columns) if columns else learn_columns(content)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / (Path(name).stem + ".tsv")
    # Unique, not per PID: a worker on another host (same PID, say both PID 1 in containers)
    # may be writing the same file after a lost claim.
    temp = out_dir / f".{target.name}.{secrets.token_hex(8)}.tmp"
    records = 0
    try:
        with open(temp, "x", encoding="utf-8", newline="") as out:
            if header:
                out.write("\t".join(n.translate(_ESCAPES) for n in names) + "\n")
            with open_content(content) as (stream, hashing):
                for record in iter_objects(stream):
                    try:
                        out.write(row_text(record, names))
                    except UnicodeEncodeError as exc:
                        # JSON may spell a lone surrogate (`"\\ud800"`); no UTF-8 can hold it.
                        bad = ascii(exc.object[exc.start : exc.end])
                        raise BadInput(
                            f"object {records + 1}: a string holds {bad}, a lone surrogate "
                            "that UTF-8 cannot encode"
                        ) from None
                    records += 1
                # The manifest's digest is of the file as stored, not of its expansion.
                size, sha256 = hashing.finish()
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(out_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself must survive a crash
    finally:
        os.close(dir_fd)
    return target, records, size, sha256


@dataclass(frozen=True)
class Options:
    output_dir: Path  # --output-dir, by default DIR/out: where outputs are published
    columns: tuple[str, ...] | None = None  # --columns, else the first object's keys
    header: bool = False  # --tsv-header

    @classmethod
    def from_settings(cls, settings: Settings) -> Options:
        if settings.output_dir is None:
            raise StartupError(f"--handler tsv on {settings.source} needs --output-dir PATH")
        return cls(settings.output_dir, settings.columns, settings.tsv_header)


OPTIONS = Options


def prepare(options: Options) -> None:
    """Start-up: the output dir exists (or is made) and is writable; `StartupError` if not."""
    path = options.output_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe_writable(path)
    except OSError as exc:
        raise unusable_dir("output dir", path, exc) from exc


async def handle(job: Job) -> Outcome:
    options: Options = job.options
    started = time.monotonic()

    def run() -> tuple[Path, int, int, str]:
        out = job.outputs_dir()  # a mkdir: blocking, like the conversion
        return convert(job.open, out, options.columns, options.header, job.name)

    target, records, size, sha256 = await job.to_thread(run)
    return Outcome(
        minutes=(time.monotonic() - started) / 60,
        size=size,
        sha256=sha256,
        outputs=[str(options.output_dir / target.name)],  # where it is, or will be, published
        records=records,
    )
