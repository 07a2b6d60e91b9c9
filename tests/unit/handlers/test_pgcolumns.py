"""Typing a file's new columns from their values: pure, no server."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest

from ingestd.handlers.content import Format
from ingestd.handlers.pgcolumns import arrow_type, json_type, merge, survey_json, survey_text
from ingestd.handlers.tsv import JsonNumber


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (None, None),
        (True, "boolean"),
        (JsonNumber("12"), "bigint"),
        (JsonNumber("-9223372036854775808"), "bigint"),
        (JsonNumber("9223372036854775808"), "numeric"),
        (JsonNumber("0.10"), "numeric"),
        (JsonNumber("1e3"), "numeric"),
        ("text", "text"),
        ("2018-06-28T00:15:00Z", "timestamptz"),
        ("2018-06-28 00:15:00.5+02:00", "timestamptz"),
        ("2018-06-28T00:15:00", "text"),  # no offset: which zone is unknown
        ("2018-13-28T00:15:00Z", "text"),  # no such month
        ({"a": 1}, "jsonb"),
        ([1], "jsonb"),
    ],
)
def test_a_value_asks_for_a_type(value: object, kind: str | None) -> None:
    assert json_type(value) == kind


@pytest.mark.parametrize(
    ("one", "other", "both"),
    [
        (None, "text", "text"),
        ("bigint", None, "bigint"),
        ("bigint", "numeric", "numeric"),
        ("timestamptz", "text", "text"),
        ("boolean", "bigint", "jsonb"),
        ("jsonb", "jsonb", "jsonb"),
    ],
)
def test_types_that_disagree_merge_into_one_that_holds_both(
    one: str | None, other: str | None, both: str
) -> None:
    assert merge(one, other) == both == merge(other, one)


def test_surveys_name_only_what_is_new_in_first_seen_order() -> None:
    text = b'{"id": 1, "b": 1}\n{"a": "x", "b": 2.5, "c": null}\n'
    assert survey_json(io.BytesIO(text), ["id"], by_line=False) == {
        "b": "numeric", "a": "text", "c": "text"
    }  # fmt: skip
    bad = b'{"id": 1, "b": 1}\n{"broken\n{"z": true}\n'
    assert survey_json(io.BytesIO(bad), ["id"], by_line=True) == {"b": "bigint", "z": "boolean"}
    assert survey_text(b'id,"new col",x\n1,2,3\n', Format("csv"), ["id"]) == {
        "new col": "text", "x": "text"
    }  # fmt: skip


def test_arrow_types_map_to_postgresql_types() -> None:
    assert [arrow_type(t) for t in (
        pa.int8(), pa.int32(), pa.int64(), pa.uint64(), pa.float32(), pa.decimal128(10, 2),
        pa.string(), pa.binary(), pa.timestamp("us", "UTC"), pa.timestamp("ms"), pa.date32(),
        pa.list_(pa.int64()), pa.dictionary(pa.int32(), pa.string()),
    )] == [
        "smallint", "integer", "bigint", "numeric", "double precision", "numeric", "text",
        "bytea", "timestamptz", "timestamp", "date", "jsonb", "text",
    ]  # fmt: skip


def test_the_fast_survey_agrees_with_the_standard_one_and_gives_up_on_a_bad_line() -> None:
    from ingestd.handlers.pgcolumns import _survey_lines

    text = (b'{"id": 1, "b": 1, "t": "2018-06-28T00:00:00Z"}\n'
            b'{"a": "x", "b": 2.5, "c": null, "d": [1], "big": 99999999999999999999}\n'
            b'{"id": 3}\n')  # fmt: skip
    standard = survey_json(io.BytesIO(text), ["id"], by_line=False)
    fast = _survey_lines(io.BytesIO(text), ["id"])
    assert fast == standard
    assert list(fast) == ["b", "t", "a", "c", "d", "big"]  # first-seen order
    assert _survey_lines(io.BytesIO(b'{"id":\n 1, "n": 2}\n'), ["id"]) == {"n": "bigint"}
    assert _survey_lines(io.BytesIO(b'{"id": 1}\nnot json\n'), ["id"]) is None
