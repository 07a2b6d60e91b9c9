"""The composition root: each option picks its backend through the registries, and options
that cannot work together are refused before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from ingestd.commands import compose
from ingestd.commands.arguments import UsageError
from ingestd.commands.run import settings_from
from ingestd.contracts.errors import StartupError
from ingestd.handlers.simulate import Options as SimulateOptions
from ingestd.handlers.tsv import Options as TsvOptions
from ingestd.ledgers.file import FileLedger
from ingestd.ledgers.file.marks import FileMarks
from ingestd.ledgers.postgres import PostgresLedger
from ingestd.postgres.marks import PgMarks
from ingestd.runtime.settings import Settings
from ingestd.sources.local import LocalSource
from ingestd.sources.s3 import S3Source


def settings(*argv: str) -> Settings:
    from ingestd.commands.cli import build_parser

    return settings_from(build_parser().parse_args(["run", *argv]))


def build(*argv: str) -> compose.Components:
    return compose.build(settings(*argv), structlog.get_logger())


def test_a_directory_with_the_defaults_is_a_local_source_and_a_file_ledger(tmp_path: Path) -> None:
    parts = build(str(tmp_path), "--seconds-in-min", "0.5")
    assert isinstance(parts.source, LocalSource) and parts.source.data_dir == tmp_path
    assert isinstance(parts.ledger, FileLedger) and parts.ledger.state_dir == tmp_path / ".ingestd"
    assert parts.options == SimulateOptions(seconds_in_min=0.5)
    assert parts.publisher is None
    parts.ledger.close()


def test_a_bucket_with_a_database_ledger_needs_no_directory_at_all() -> None:
    parts = build("s3://drop/in", "--ledger", "postgresql://h/db")
    assert isinstance(parts.source, S3Source) and isinstance(parts.ledger, PostgresLedger)
    assert parts.ledger.source == "s3://drop/in/"
    assert settings("s3://drop/in", "--ledger", "postgresql://h/db").state_dir is None


def test_a_bucket_without_shared_state_or_outputs_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs --ledger postgresql"):
        settings("s3://drop")
    shared = ("s3://drop", "--state-dir", str(tmp_path))
    with pytest.raises(StartupError, match="needs --output-dir"):
        build(*shared, "--handler", "tsv")
    with pytest.raises(StartupError, match="needs --output-dir"):
        build(*shared, "--publish-in-order")
    parts = build(*shared, "--handler", "tsv", "--output-dir", str(tmp_path / "out"))
    assert parts.options == TsvOptions(tmp_path / "out")
    parts.ledger.close()


def test_publishing_keeps_the_watermark_where_the_handler_results_are(tmp_path: Path) -> None:
    files = build(str(tmp_path), "--handler", "tsv", "--publish-in-order")
    assert files.publisher is not None and isinstance(files.publisher.marks, FileMarks)
    assert files.publisher.out_dir == tmp_path / "out"
    files.ledger.close()
    rows = build(str(tmp_path), "--handler", "pg", "--pg-table", "t", "--publish-in-order",
                 "--pg-url", "postgresql://h/db")  # fmt: skip
    assert rows.publisher is not None and isinstance(rows.publisher.marks, PgMarks)
    assert rows.publisher.out_dir is None  # rows need no moving
    rows.ledger.close()
