"""--bad-rows: its forms, its refusals, and where each limit lies."""

from __future__ import annotations

import pytest

from ingestd.runtime.settings import BadRows, bad_rows, delimiter


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("fail", BadRows()),
        ("reject", BadRows(reject=True)),
        ("reject:0", BadRows(reject=True, most=0)),
        ("reject:25", BadRows(reject=True, most=25)),
        ("reject:1.5%", BadRows(reject=True, percent=1.5)),
        ("reject:100%", BadRows(reject=True, percent=100.0)),
    ],
)
def test_forms_and_their_text(text: str, parsed: BadRows) -> None:
    assert bad_rows(text) == parsed
    assert str(parsed) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ignore",
        "fail:3",
        "reject:",
        "reject:-1",
        "reject:x",
        "reject:101%",
        "reject:nan%",
        "reject:2.5",
    ],
)
def test_refusals_say_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="reject"):
        bad_rows(text)


def test_limits() -> None:
    assert not BadRows().over(0, 10) and not BadRows(reject=True).over(10**9, 10**9)
    count = BadRows(reject=True, most=2)
    assert not count.over(2, 3) and count.over(3, 1000)
    share = BadRows(reject=True, percent=10)
    assert not share.over(1, 10) and share.over(2, 10) and not share.over(0, 0)


def test_delimiter_takes_one_character_or_a_spelled_tab() -> None:
    assert delimiter("\\t") == "\t" and delimiter(";") == ";"
    for bad in ("", ",,", '"', "\n"):
        with pytest.raises(ValueError):
            delimiter(bad)
