"""A file's content as the handlers read it: bytes hashed as stored, compression undone, the
format told from the first bytes, and the content cut into records when rows are judged one
at a time.

Compression is recognised by its magic bytes, never by the name: gzip and bz2 and xz by the
standard library, zstd by the `zstandard` package (in the `postgres` and `zstd` extras). The
digest and size a record keeps are always of the bytes as stored, before any of it is undone.
Compressed data that is corrupt is the content's fault (`BadInput`); an error of the source
itself while reading (a network read that broke) is passed on as it came.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import hashlib
import io
import lzma
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from ingestd.contracts.errors import BadInput

Opener = Callable[[], BinaryIO]

CHUNK = 1 << 20
SNIFF_BYTES = 64 << 10  # how much of the start tells the format and the CSV dialect
BOM = b"\xef\xbb\xbf"
PARQUET_MAGIC = b"PAR1"
_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
)
_SNIFFED_DELIMITERS = ",\t;|"


class Hashing(io.RawIOBase):
    """Counts and hashes the bytes as stored while they are read (before any decompression)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()
        self.size = 0
        self.failed: BaseException | None = None  # the source's own error, told apart

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._raw.read(len(buffer))
        except BaseException as exc:
            self.failed = exc
            raise
        size = len(data)
        buffer[:size] = data
        self.digest.update(data)
        self.size += size
        return size

    def finish(self) -> tuple[int, str]:
        """(size, sha256) of the whole content: what was not read yet is read now."""
        while self._raw.read(CHUNK):  # pragma: no branch - trailing bytes after the content
            pass
        return self.size, self.digest.hexdigest()


class _Undone(io.RawIOBase):
    """A decompressor's output; its errors are the content's, unless the source broke."""

    def __init__(self, inner: Any, kind: str, hashing: Hashing) -> None:
        self._inner = inner
        self._kind = kind
        self._hashing = hashing

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return int(self._inner.readinto(buffer))
        except BadInput:
            raise
        except Exception as exc:
            if self._hashing.failed is not None:
                raise  # the source's read failed: not the content's fault
            raise BadInput(f"corrupt {self._kind} data: {exc}") from None


def compression(head: bytes) -> str | None:
    """The compression these first bytes announce, or None."""
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    return None


def _decompressor(kind: str, stream: BinaryIO) -> Any:
    if kind == "gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")
    if kind == "bz2":
        return bz2.BZ2File(stream)
    if kind == "xz":
        return lzma.LZMAFile(stream)
    try:
        import zstandard
    except ImportError:
        raise BadInput(
            "zstd-compressed content needs the zstandard package: pip install "
            "'ingestd[zstd]' (then ingestd retry the file)"
        ) from None
    return _Zstd(zstandard.ZstdDecompressor(), stream)


class _Zstd(io.RawIOBase):
    """zstd frames one after another, and an error for a frame cut short: the library's own
    stream reader ends quietly at a truncated frame, which would load half a file as whole."""

    def __init__(self, decompressor: Any, stream: BinaryIO) -> None:
        self._decompressor = decompressor
        self._stream = stream
        self._frame: Any = None
        self._ready = memoryview(b"")
        self._started = False  # inside a frame: its end must come before the content's

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not len(self._ready):
            chunk = self._stream.read(CHUNK)
            if not chunk:
                if self._started:
                    raise EOFError("the content ends inside a zstd frame")
                return 0
            self._feed(chunk)
        size = min(len(buffer), len(self._ready))
        buffer[:size] = self._ready[:size]
        self._ready = self._ready[size:]
        return size

    def _feed(self, chunk: bytes) -> None:
        out = []
        while chunk:
            if self._frame is None:
                self._frame = self._decompressor.decompressobj()
            self._started = True
            out.append(self._frame.decompress(chunk))
            if not self._frame.eof:
                break
            chunk = self._frame.unused_data
            self._frame = None
            self._started = False
        self._ready = memoryview(b"".join(out))


def _opener(content: Path | Opener) -> Opener:
    if isinstance(content, Path):
        return lambda: open(content, "rb")
    return content


@contextlib.contextmanager
def open_content(content: Path | Opener) -> Iterator[tuple[BinaryIO, Hashing]]:
    """(the content, decompressed and peekable; the hasher of the bytes as stored)."""
    with _opener(content)() as raw:
        hashing = Hashing(raw)
        stored = io.BufferedReader(hashing, CHUNK)
        kind = compression(stored.peek(8)[:8])
        if kind is None:
            yield cast(BinaryIO, stored), hashing
            return
        with _decompressor(kind, cast(BinaryIO, stored)) as inner:
            yield cast(BinaryIO, io.BufferedReader(_Undone(inner, kind, hashing), CHUNK)), hashing


def skip_bom(stream: IO[bytes]) -> None:
    """Skip a UTF-8 byte order mark at the start (editors on Windows add one)."""
    if head_of(stream, len(BOM)) == BOM:
        stream.read(len(BOM))


def head_of(stream: IO[bytes], size: int = SNIFF_BYTES) -> bytes:
    """Up to `size` bytes from the start, left unread (`open_content` gives a stream that
    peeks: a BufferedReader of a buffer's size)."""
    return cast(io.BufferedReader, stream).peek(size)[:size]


@dataclass(frozen=True)
class Format:
    """What a file holds, as `--format` and its CSV options (or the sniffing) say."""

    name: str  # json | csv | tsv | parquet
    delimiter: str = ","
    null: str = ""
    header: bool = False


def tell(head: bytes, asked: Format) -> Format:
    """The format of content starting with `head` (decompressed, BOM skipped): `asked`
    unless it is `auto`, which goes by the bytes: Parquet's magic, a JSON object's brace,
    else CSV with its delimiter sniffed."""
    if asked.name != "auto":
        return asked
    if head.startswith(PARQUET_MAGIC):
        return Format("parquet")
    if head.lstrip(b" \t\r\n").startswith(b"{"):
        return Format("json")
    return Format("csv", sniff_delimiter(head, asked.delimiter), asked.null, asked.header)


def sniff_delimiter(head: bytes, default: str) -> str:
    """The CSV delimiter the first lines use (one of , tab ; |), else `default`."""
    text = head.decode("utf-8", errors="replace")
    lines = text.splitlines()[:20]
    if len(head) >= SNIFF_BYTES and len(lines) > 1:
        lines = lines[:-1]  # the last one may be cut short
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines), delimiters=_SNIFFED_DELIMITERS)
    except csv.Error:
        return default
    return str(dialect.delimiter)


def line_blocks(stream: IO[bytes]) -> Iterator[bytes]:
    """The content in blocks of whole lines (each cut after a newline; the last as it ends),
    a byte order mark at the start left out: for decoders that take many lines at once."""
    rest = b""
    first = True
    while True:
        chunk = stream.read(CHUNK)
        if first and chunk.startswith(BOM):
            chunk = chunk[len(BOM) :]
        first = False
        data = rest + chunk
        cut = data.rfind(b"\n") + 1 if chunk else len(data)
        data, rest = data[:cut], data[cut:]
        if data:
            yield data
        if not chunk:
            return


@dataclass(frozen=True)
class Record:
    """One row of the content as it came: where it starts (line), and its bytes."""

    line: int  # 1-based line of the file where it starts
    raw: bytes  # without its line ending


def lines(stream: Iterable[bytes]) -> Iterator[Record]:
    """Each non-blank line (JSON Lines; PostgreSQL's text format) as a record."""
    for number, line in enumerate(stream, start=1):
        text = line.rstrip(b"\r\n")
        if text.strip():
            yield Record(number, text)


def csv_records(stream: Iterable[bytes], quote: bytes = b'"') -> Iterator[Record]:
    """Each CSV record, which may span lines inside quotes (a quote inside a quoted field is
    doubled, so a record ends at a line ending after an even number of quotes)."""
    parts: list[bytes] = []
    start = 0
    odd = False
    for number, line in enumerate(stream, start=1):
        if not parts:
            start = number
        parts.append(line)
        if line.count(quote) % 2:
            odd = not odd
        if not odd:
            record = b"".join(parts)
            parts = []
            body = record[:-2] if record.endswith(b"\r\n") else record.rstrip(b"\n")
            if body.strip():
                yield Record(start, body)
    if parts:  # an unterminated quoted field: PostgreSQL names it for the row
        yield Record(start, b"".join(parts))


def header_fields(record: bytes, form: Format) -> list[str]:
    """The column names a header record holds."""
    text = record.decode("utf-8", errors="replace")
    if form.name == "tsv":
        return text.split(form.delimiter)
    return next(csv.reader([text], delimiter=form.delimiter), [])
