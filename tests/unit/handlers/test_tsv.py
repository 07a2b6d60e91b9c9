"""The tsv handler: COPY text escaping and streaming JSON input."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from ingestd.handlers import BadInput
from ingestd.handlers.tsv import convert, field_text, iter_objects, learn_columns, row_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "\\N"),
        (True, "t"),
        (False, "f"),
        (0, "0"),
        (-12, "-12"),
        (1.5, "1.5"),
        (10**30, "1000000000000000000000000000000"),
        ("plain", "plain"),
        ("", ""),
        ("tab\there", "tab\\there"),
        ("new\nline", "new\\nline"),
        ("cr\rx", "cr\\rx"),
        ("back\\slash", "back\\\\slash"),
        ("\\N", "\\\\N"),  # the two characters \N are text, not NULL
        ("ünïcødé ✓ 😀", "ünïcødé ✓ 😀"),
        ({"a": [1, None, "x\ty"]}, '{"a":[1,null,"x\\\\ty"]}'),
        ([], "[]"),
    ],
)
def test_escaping_table(value: Any, text: str) -> None:
    assert field_text(value) == text


def test_nul_is_bad_input() -> None:
    with pytest.raises(BadInput, match="NUL"):
        field_text("a\x00b")


def test_rows_follow_the_columns() -> None:
    assert row_text({"b": 2, "a": "x"}, ["a", "b", "c"]) == "x\t2\t\\N\n"


def objects(data: bytes) -> list[dict[str, Any]]:
    return list(iter_objects(io.BytesIO(data)))


def test_concatenated_json_without_newlines_and_json_lines() -> None:
    assert objects(b'{"a":1}{"a":2}  {"a":3}\n\n{"a":4}') == [{"a": i} for i in range(1, 5)]
    assert objects(b"") == []
    assert objects(b"  \n ") == []


def test_values_split_across_read_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    import ingestd.handlers.tsv as tsv

    monkeypatch.setattr(tsv, "CHUNK", 7)
    data = "".join(json.dumps({"k": "é" * i, "n": i}) for i in range(50)).encode()
    assert [o["n"] for o in objects(data)] == list(range(50))


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b'{"a":1}\n{"a":}\n', "line 2"),
        (b'{"a":1}\n\n\n{"a": tru}', "line 4"),
        (b'{"a":1}\n[1,2]\n', "line 2: expected a JSON object"),
        (b'{"a":1}\n{"a":"unterminated', "line 2"),
        (b'{"a":"\xff"}', "UTF-8"),
    ],
)
def test_malformed_input_says_where(data: bytes, where: str) -> None:
    with pytest.raises(BadInput, match=where):
        objects(data)


def test_column_union_in_first_seen_order(tmp_path: Path) -> None:
    path = tmp_path / "2018_06_28_00_00.txt"
    path.write_text('{"b":1,"a":2}\n{"c":3,"a":4}\n{"d":null}')
    assert learn_columns(path) == ["b", "a", "c", "d"]


def test_convert_writes_atomically_and_redo_is_identical(tmp_path: Path) -> None:
    path = tmp_path / "2018_06_28_00_00.txt"
    path.write_bytes(gzip.compress(b'{"a":"x\\ty"}\n{"b":true}'))
    out = tmp_path / "out"
    target, records, size, sha256 = convert(path, out, None, header=True)
    assert target == out / "2018_06_28_00_00.tsv"
    first = target.read_text()
    assert first == "a\tb\nx\\ty\t\\N\n\\N\tt\n"
    assert (records, size) == (2, path.stat().st_size)
    assert sha256 == hashlib.sha256(path.read_bytes()).hexdigest()  # of the file as stored
    convert(path, out, None, header=True)
    assert target.read_text() == first
    assert sorted(p.name for p in out.iterdir()) == ["2018_06_28_00_00.tsv"]  # no temp left


def test_two_writers_of_one_file_never_share_a_temp_file(tmp_path: Path) -> None:
    # After a lost claim, a worker on another host (perhaps with the same PID) may convert
    # the same file at the same time: each must write its own temp file.
    path = tmp_path / "2018_06_28_00_00.txt"
    path.write_text("".join(json.dumps({"i": i, "pad": "x" * 200}) + "\n" for i in range(5000)))
    out = tmp_path / "out"
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def write() -> None:
        start.wait()
        for _ in range(5):
            try:
                convert(path, out, ("i", "pad"), header=False)
            except Exception as exc:  # collected: the assertion below shows them
                errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    lines = (out / "2018_06_28_00_00.tsv").read_text().splitlines()
    assert lines == [f"{i}\t{'x' * 200}" for i in range(5000)]
    assert sorted(p.name for p in out.iterdir()) == ["2018_06_28_00_00.tsv"]


def test_malformed_file_leaves_no_output(tmp_path: Path) -> None:
    path = tmp_path / "2018_06_28_00_00.txt"
    path.write_text('{"a":1}\n{oops}\n')
    with pytest.raises(BadInput):
        convert(path, tmp_path / "out", ("a",), header=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_lone_surrogate_is_bad_input_with_its_place(tmp_path: Path) -> None:
    path = tmp_path / "2018_06_28_00_00.txt"
    path.write_text('{"id":1}\n{"id":"\\ud800"}\n')
    with pytest.raises(BadInput, match=r"object 2: .*\\ud800.*lone surrogate"):
        convert(path, tmp_path / "out", ("id",), header=False)
    assert list((tmp_path / "out").iterdir()) == []  # nothing written


def test_a_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "2018_06_28_00_00.txt"
    path.write_bytes(b'\xef\xbb\xbf{"a":1}\n{"a":2}\n')
    target, records, _, _ = convert(path, tmp_path / "out", ("a",), header=False)
    assert (records, target.read_text()) == (2, "1\n2\n")
