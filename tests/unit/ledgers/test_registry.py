"""The ledgers' registry: `--ledger`'s scheme names its kind; none, a path or file:PATH is the
file ledger in a state dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestd import ledgers


def test_a_database_url_is_postgresql_and_anything_else_a_state_dir(tmp_path: Path) -> None:
    assert ledgers.scheme(None) == ledgers.scheme(str(tmp_path)) == "file"
    assert ledgers.scheme("file:" + str(tmp_path)) == "file"
    assert ledgers.kind("postgres://h/db") is ledgers.kind("postgresql://u@h/db")
    file, postgres = ledgers.kind(None), ledgers.kind("postgresql://h/db")
    assert file.uses_state_dir and not postgres.uses_state_dir
    assert file.state_dir("file:" + str(tmp_path)) == tmp_path == file.state_dir(str(tmp_path))
    assert postgres.state_dir("postgresql://h/db") is None


def test_an_unknown_scheme_is_refused_in_words() -> None:
    with pytest.raises(ValueError, match="no such kind of ledger"):
        ledgers.kind("mysql://h/db")


def test_a_command_of_another_kind_says_why_it_does_not_apply() -> None:
    assert ledgers.kind(None).refuses("compact") is None
    assert "is a table" in str(ledgers.kind("postgresql://h/db").refuses("compact"))


def test_the_file_ledger_says_when_its_state_dir_cannot_be_written(tmp_path: Path) -> None:
    where = ledgers.Where(None, tmp_path, "ingestd", str(tmp_path))
    assert ledgers.kind(None).writable(where) is None
    gone = ledgers.Where(None, tmp_path / "gone", "ingestd", str(tmp_path))
    assert isinstance(ledgers.kind(None).writable(gone), OSError)
