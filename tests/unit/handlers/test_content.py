"""A file's content: compression undone by magic bytes, the digest of the bytes as stored,
the format told from the first bytes, and rows cut with the lines they start on."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard

from ingestd.handlers import BadInput
from ingestd.handlers.content import (
    Format,
    compression,
    csv_records,
    header_fields,
    lines,
    open_content,
    skip_bom,
    tell,
)

TEXT = b"".join(b'{"id": %d, "s": "x"}\n' % i for i in range(5000))
COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda b: b,
    "gzip": gzip.compress,
    "zstd": lambda b: zstandard.ZstdCompressor().compress(b),
    "bz2": bz2.compress,
    "xz": lzma.compress,
}


@pytest.mark.parametrize("kind", list(COMPRESSORS))
def test_each_compression_is_undone_and_the_digest_is_of_the_stored_bytes(
    tmp_path: Path, kind: str
) -> None:
    stored = COMPRESSORS[kind](TEXT)
    path = tmp_path / "f"
    path.write_bytes(stored)
    assert compression(stored[:8]) == (None if kind == "plain" else kind)
    with open_content(path) as (stream, hashing):
        assert stream.read() == TEXT
        size, sha256 = hashing.finish()
    assert (size, sha256) == (len(stored), hashlib.sha256(stored).hexdigest())


def test_several_zstd_frames_are_read_as_one_content(tmp_path: Path) -> None:
    path = tmp_path / "f"
    z = zstandard.ZstdCompressor()
    path.write_bytes(z.compress(b"a\n") + z.compress(b"b\n"))
    with open_content(path) as (stream, _):
        assert stream.read() == b"a\nb\n"


@pytest.mark.parametrize("kind", ["gzip", "zstd", "bz2", "xz"])
def test_corrupt_compressed_data_is_bad_input(tmp_path: Path, kind: str) -> None:
    stored = COMPRESSORS[kind](TEXT)
    path = tmp_path / "f"
    path.write_bytes(stored[: len(stored) // 2] + b"\x00garbage" * 50)
    with pytest.raises(BadInput, match=f"corrupt {kind} data"), open_content(path) as (s, _):
        s.read()


def test_an_error_of_the_source_itself_is_not_bad_input() -> None:
    class Broken(io.RawIOBase):
        calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
            self.calls += 1
            if self.calls > 1:
                raise ConnectionResetError("the network broke")
            data = gzip.compress(TEXT)[:100]
            buffer[: len(data)] = data
            return len(data)

    with pytest.raises(ConnectionResetError), open_content(lambda: Broken()) as (s, _):  # type: ignore[arg-type,return-value]
        s.read()


@pytest.mark.parametrize(
    ("head", "name", "delimiter"),
    [
        (b"PAR1\x15\x04", "parquet", ","),
        (b'  \n{"a": 1}\n', "json", ","),
        (b"a,b,c\n1,2,3\n4,5,6\n", "csv", ","),
        (b"a;b;c\n1;2;3\n4;5;6\n", "csv", ";"),
        (b"a\tb\tc\n1\t2\t3\n", "csv", "\t"),
        (b"a|b\n1|2\n", "csv", "|"),
        (b"justoneword\n", "csv", ","),
    ],
)
def test_auto_tells_the_format_by_the_first_bytes(head: bytes, name: str, delimiter: str) -> None:
    form = tell(head, Format("auto"))
    assert (form.name, form.delimiter) == (name, delimiter)


def test_a_format_asked_for_is_taken_as_it_is() -> None:
    asked = Format("tsv", "\t", "\\N", True)
    assert tell(b'{"a": 1}', asked) is asked


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"\xef\xbb\xbfa,b\n")
    with open_content(path) as (stream, _):
        skip_bom(stream)
        assert stream.read() == b"a,b\n"


def test_lines_number_every_line_and_skip_blank_ones() -> None:
    got = [(r.line, r.raw) for r in lines(io.BytesIO(b'{"a":1}\r\n\n  \n{"a":2}'))]
    assert got == [(1, b'{"a":1}'), (4, b'{"a":2}')]


def test_csv_records_keep_quoted_line_breaks_and_start_lines() -> None:
    text = b'a,b\r\n1,"two\r\nlines"\r\n2,"say ""hi"""\r\n\r\n3,"x\n\ny"\n4,last'
    got = [(r.line, r.raw) for r in csv_records(io.BytesIO(text))]
    assert got == [
        (1, b"a,b"),
        (2, b'1,"two\r\nlines"'),
        (4, b'2,"say ""hi"""'),
        (6, b'3,"x\n\ny"'),
        (9, b"4,last"),
    ]


def test_an_unterminated_quote_is_one_last_record_for_the_server_to_refuse() -> None:
    got = [(r.line, r.raw) for r in csv_records(io.BytesIO(b'1,ok\n2,"open\n3,x\n'))]
    assert got == [(1, b"1,ok"), (2, b'2,"open\n3,x\n')]


def test_header_fields_by_format() -> None:
    assert header_fields(b'id,"the name",x', Format("csv")) == ["id", "the name", "x"]
    assert header_fields(b"id\tname", Format("tsv", "\t")) == ["id", "name"]


def test_missing_zstandard_is_bad_input_with_the_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "zstandard", None)
    path = tmp_path / "f"
    path.write_bytes(COMPRESSORS["zstd"](TEXT))
    with pytest.raises(BadInput, match=r"ingestd\[zstd\]"), open_content(path) as (s, _):
        s.read()
