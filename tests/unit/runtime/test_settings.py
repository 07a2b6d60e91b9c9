"""Every option once: its flag, its variable and its parser, each parser's error a sentence."""

from __future__ import annotations

import pytest

from ingestd.runtime import settings
from ingestd.runtime.settings import OPTIONS


def test_each_option_has_one_flag_and_one_variable() -> None:
    assert len({o.cli for o in OPTIONS}) == len({o.env for o in OPTIONS}) == len(OPTIONS)
    assert all(o.env.startswith("INGESTD_") and o.cli.startswith("--") for o in OPTIONS)


@pytest.mark.parametrize(
    ("parse", "text", "says"),
    [
        (settings.positive, "0", "must be > 0"),
        (settings.non_negative, "nan", "not a finite number"),
        (settings.positive_int, "1.5", "not a whole number"),
        (settings.worker_id, "a/b", "not a usable worker id"),
        (settings.column_list, "a,,b", "distinct, non-empty"),
        (settings.table_name, "a.b.c", "give TABLE or SCHEMA.TABLE"),
        (settings.host_port, "9464", "is not HOST:PORT"),
        (settings.disposal, "move:", "choose keep, delete or move:DIR"),
        (settings.yes_no, "maybe", "not a yes/no value"),
        (settings.fleet_name, "", "not a usable fleet name"),
    ],
)  # fmt: skip
def test_a_bad_value_says_what_is_wrong(parse: object, text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse(text)  # type: ignore[operator]


def test_good_values_come_back_parsed() -> None:
    assert settings.host_port(":9464") == ("0.0.0.0", 9464)
    assert settings.column_list(" a, b ") == ("a", "b")
    assert settings.disposal("move:done") == "move:done"
    assert settings.yes_no("On") is True and settings.yes_no("0") is False
