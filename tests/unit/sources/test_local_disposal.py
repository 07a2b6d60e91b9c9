"""The local source's disposals: move or delete, idempotent, never replacing, never destroying a
re-delivery."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest

from ingestd.contracts.source import Changed, Content, Disposal
from ingestd.sources.local import LocalSource
from ingestd.sources.memory import MemorySource

NAMES = [f"2018_06_28_{i // 4:02d}_{i % 4 * 15:02d}.txt" for i in range(40)]


def test_disposal_is_keep_delete_or_move_somewhere() -> None:
    assert Disposal.parse("keep") == Disposal() and str(Disposal.parse("delete")) == "delete"
    assert Disposal.parse("move:done") == Disposal("move", "done")
    for bad in ("move", "move:", "move:/", "archive", "mv:x"):
        with pytest.raises(ValueError, match="keep, delete or move:DIR"):
            Disposal.parse(bad)


def test_sources_move_and_delete_idempotently(tmp_path: Path) -> None:
    source = LocalSource(tmp_path)
    (tmp_path / NAMES[0]).write_text("12\n")
    (tmp_path / NAMES[1]).write_text("13\n")
    (tmp_path / "done").mkdir()
    first = Content(source.version(NAMES[0]))
    source.dispose(NAMES[0], Disposal("move", "done"), first)
    assert (tmp_path / "done" / NAMES[0]).read_text() == "12\n"
    with pytest.raises(FileNotFoundError):  # a peer did it: callers ignore this
        source.dispose(NAMES[0], Disposal("move", "done"), first)
    source.dispose(NAMES[1], Disposal("delete"), Content(source.version(NAMES[1])))
    assert sorted(os.listdir(tmp_path)) == ["done"]
    memory = MemorySource({NAMES[0]: b"1"})
    memory.dispose(NAMES[0], Disposal("delete"), Content(memory.version(NAMES[0])))
    with pytest.raises(FileNotFoundError):
        memory.dispose(NAMES[0], Disposal("delete"), Content(None))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("kind", ["local", "memory"])
@pytest.mark.parametrize("action", ["delete", "move"])
def test_a_redelivery_with_other_content_is_kept_and_the_same_content_is_disposed(
    tmp_path: Path, kind: str, action: str
) -> None:
    """Disposal happens only while the source holds what was processed; never replacing."""
    data = tmp_path / "drop"
    (data / "done").mkdir(parents=True)
    source: Any = LocalSource(data) if kind == "local" else MemorySource()

    def put(content: bytes) -> Content:
        if kind == "local":
            (data / NAMES[0]).unlink(missing_ok=True)
            (data / NAMES[0]).write_bytes(content)
        else:
            source.put(NAMES[0], content)
        return Content(source.version(NAMES[0]), _sha(content))

    disposal = Disposal(action, "done") if action == "move" else Disposal("delete")
    processed = put(b"12\n")
    source.dispose(NAMES[0], disposal, processed)  # the first delivery: disposed
    newer = put(b"13\n")
    with pytest.raises(Changed) as changed:
        source.dispose(NAMES[0], disposal, processed)  # other content: kept, untouched
    assert changed.value.sha256 == newer.sha256 and changed.value.version == newer.version
    assert source.version(NAMES[0]) == newer.version
    put(b"12\n")  # the same bytes delivered again: nothing to lose, disposed
    source.dispose(NAMES[0], disposal, processed)
    assert source.version(NAMES[0]) is None
    if kind == "local":
        # The archive's original was never replaced.
        expected = [NAMES[0]] if action == "move" else []
        assert sorted(os.listdir(data / "done")) == expected
        if action == "move":
            assert (data / "done" / NAMES[0]).read_bytes() == b"12\n"


def test_a_move_never_replaces_what_its_target_holds(tmp_path: Path) -> None:
    source = LocalSource(tmp_path)
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / NAMES[0]).write_text("an archived original\n")
    (tmp_path / NAMES[0]).write_text("12\n")
    source.dispose(NAMES[0], Disposal("move", "done"), Content(source.version(NAMES[0])))
    names = sorted(os.listdir(tmp_path / "done"))
    assert names[0] == NAMES[0] and names[1].startswith(NAMES[0] + ".") and len(names) == 2
    assert (tmp_path / "done" / NAMES[0]).read_text() == "an archived original\n"
    assert (tmp_path / "done" / names[1]).read_text() == "12\n"


def test_a_move_target_removed_at_run_time_is_an_error_not_a_peer(tmp_path: Path) -> None:
    source = LocalSource(tmp_path)
    (tmp_path / NAMES[0]).write_text("12\n")
    with pytest.raises(OSError, match="does not exist") as raised:
        source.dispose(NAMES[0], Disposal("move", "done"), Content(source.version(NAMES[0])))
    assert not isinstance(raised.value, FileNotFoundError)
    assert (tmp_path / NAMES[0]).read_text() == "12\n"


def test_a_move_across_filesystems_copies_then_removes(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem of its own")
    target = Path(shm / f"ingestd-test-{os.getpid()}")
    target.mkdir()
    try:
        (tmp_path / NAMES[0]).write_bytes(b"x" * 3_000_000)
        LocalSource(tmp_path).dispose(NAMES[0], Disposal("move", str(target)), Content())
        assert os.listdir(target) == [NAMES[0]] and not (tmp_path / NAMES[0]).exists()
        assert (target / NAMES[0]).stat().st_size == 3_000_000
    finally:
        for path in target.iterdir():
            path.unlink()
        target.rmdir()


@pytest.mark.parametrize("noreplace", [True, False])
def test_a_move_never_replaces_with_or_without_renameat2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, noreplace: bool
) -> None:
    """Where the C library or the filesystem has no RENAME_NOREPLACE (NFS), a hard link and
    an unlink do the same; either way a taken name is never replaced."""
    from ingestd.sources import local

    if not noreplace:
        monkeypatch.setattr(local, "_renameat2", None)
    (tmp_path / "done").mkdir()
    for content in ("first\n", "second\n", "first\n"):
        (tmp_path / NAMES[0]).write_text(content)
        local.move_into(tmp_path / NAMES[0], tmp_path / "done")
        assert not (tmp_path / NAMES[0]).exists()
    names = sorted(os.listdir(tmp_path / "done"))
    assert names[0] == NAMES[0] and len(names) == 2  # the same bytes again: not kept twice
    assert (tmp_path / "done" / NAMES[0]).read_text() == "first\n"
    assert (tmp_path / "done" / names[1]).read_text() == "second\n"
