"""The sources' registry: a location's scheme names its kind, and the kind says what it needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestd import sources


def test_a_path_is_a_directory_and_s3_a_bucket(tmp_path: Path) -> None:
    assert sources.scheme(str(tmp_path)) == sources.scheme("file:" + str(tmp_path)) == "file"
    assert sources.scheme("relative/dir") == "file"
    assert sources.scheme("s3://bucket/prefix") == sources.scheme("S3://bucket") == "s3"
    directory, bucket = sources.kind(str(tmp_path)), sources.kind("s3://b/p")
    assert directory.has_directory and not bucket.has_directory
    assert directory.default_state_dir(str(tmp_path)) == tmp_path / ".ingestd"
    assert directory.default_output_dir(str(tmp_path)) == tmp_path / "out"
    assert bucket.default_state_dir("s3://b/p") is None  # coordination cannot live there
    assert bucket.default_output_dir("s3://b/p") is None
    assert bucket.rescan_interval is not None and directory.rescan_interval is None


def test_an_unknown_scheme_or_a_bad_bucket_is_refused_in_words() -> None:
    with pytest.raises(ValueError, match="no such kind of source"):
        sources.kind("ftp://host/dir")
    with pytest.raises(ValueError, match="no bucket name"):
        sources.kind("s3:///prefix").parse("s3:///prefix")
    assert sources.kind("s3:///x").problem("s3:///x") is not None


def test_identity_is_the_same_whichever_way_the_source_is_named(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert sources.identity(tmp_path / "link") == str((tmp_path / "real").resolve())
    assert sources.identity("s3://b/p1") == "s3://b/p1/" == sources.identity("s3://b//p1/")
    assert sources.identity("s3://b") == "s3://b/"
    assert sources.identity(tmp_path, "day") == "fleet:day" == sources.identity("s3://x", "day")


def test_an_operator_command_learns_why_a_directory_cannot_be_read(tmp_path: Path) -> None:
    kind = sources.kind(str(tmp_path))
    assert kind.problem(str(tmp_path)) is None
    assert kind.problem(str(tmp_path / "missing")) == f"no such directory: {tmp_path / 'missing'}"
    (tmp_path / "file").write_text("")
    assert kind.problem(str(tmp_path / "file")).startswith("not a directory")  # type: ignore[union-attr]
    assert kind.holds_path(str(tmp_path), str(tmp_path / "2018_06_28_00_00.txt"))
    assert not kind.holds_path(str(tmp_path), "/elsewhere/2018_06_28_00_00.txt")
    assert not sources.kind("s3://b").holds_path("s3://b", "2018_06_28_00_00.txt")
