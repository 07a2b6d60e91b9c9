"""The done-manifest: fenced appends, a torn tail, a fast incremental reader, and what an audit
reads of each line."""

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingestd.ledgers.file.manifest import (
    DONE,
    FAILED,
    RETRY,
    Manifest,
    encode,
    parse_head,
    parse_record,
    read_records,
)


def record(name: str, status: str = DONE, **extra: Any) -> dict[str, Any]:
    return {"file": name, "status": status, "worker": "w", **extra}


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    m = Manifest(tmp_path / "manifest.jsonl", tmp_path / "manifest.lock")
    yield m
    m.close()


def test_fast_path_and_json_agree() -> None:
    line = encode(record("2018_06_28_00_00.txt", minutes=1.5)).rstrip(b"\n")
    assert parse_head(line) == ("2018_06_28_00_00.txt", "done")
    reordered = json.dumps({"status": "failed", "file": 'x\\y"z'}).encode()
    assert parse_head(reordered) == ('x\\y"z', "failed")
    assert parse_head(b"garbage") is None
    assert parse_head(b'{"file": 3, "status": "done"}') is None
    assert parse_head(b"[1, 2]") is None


def test_commit_then_read_back(manifest: Manifest, tmp_path: Path) -> None:
    assert manifest.commit(record("2018_06_28_00_00.txt"))
    assert manifest.commit(record("2018_06_28_00_15.txt", FAILED, error="bad"))
    assert manifest.is_finished("2018_06_28_00_00.txt")
    assert manifest.is_finished("2018_06_28_00_15.txt")
    other = Manifest(tmp_path / "manifest.jsonl", tmp_path / "manifest.lock")
    other.refresh()
    assert other.status == {"2018_06_28_00_00.txt": DONE, "2018_06_28_00_15.txt": FAILED}
    other.close()


def test_incremental_tail_reads_only_new_lines(manifest: Manifest, tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(encode(record("2018_06_28_00_00.txt")))
    manifest.refresh()
    assert list(manifest.status) == ["2018_06_28_00_00.txt"]
    with open(path, "ab") as handle:
        handle.write(encode(record("2018_06_28_00_15.txt")))
    manifest.refresh()
    assert list(manifest.status) == ["2018_06_28_00_00.txt", "2018_06_28_00_15.txt"]
    assert manifest._offset == path.stat().st_size


def test_torn_last_line_waits_then_is_closed_by_next_writer(tmp_path: Path) -> None:
    bad: list[int] = []
    path = tmp_path / "manifest.jsonl"
    m = Manifest(path, tmp_path / "manifest.lock", on_bad_line=lambda off, _: bad.append(off))
    first = encode(record("2018_06_28_00_00.txt"))
    torn = encode(record("2018_06_28_00_15.txt"))[:25]  # a writer killed mid-line
    path.write_bytes(first + torn)
    m.refresh()
    assert list(m.status) == ["2018_06_28_00_00.txt"]
    assert bad == []  # an incomplete line is not judged yet
    assert m.commit(record("2018_06_28_00_30.txt"))
    content = path.read_bytes()
    assert content.startswith(first + torn + b"\n")  # closed, never rewritten
    assert bad == [len(first)]  # the closed fragment is skipped once, with a warning
    assert set(m.status) == {"2018_06_28_00_00.txt", "2018_06_28_00_30.txt"}
    assert [r["file"] for r in read_records(path)] == [
        "2018_06_28_00_00.txt",
        "2018_06_28_00_30.txt",
    ]
    m.close()


def test_garbage_lines_are_skipped(manifest: Manifest, tmp_path: Path) -> None:
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(b"not json\n" + encode(record("2018_06_28_00_00.txt")) + b'\n{"a":1}\n')
    manifest.refresh()
    assert manifest.status == {"2018_06_28_00_00.txt": DONE}
    assert manifest.bad_lines == 2


def test_fencing_refuses_a_second_done(manifest: Manifest, tmp_path: Path) -> None:
    peer = Manifest(tmp_path / "manifest.jsonl", tmp_path / "manifest.lock")
    assert peer.commit(record("2018_06_28_00_00.txt", worker="peer"))
    ran = []
    assert not manifest.commit(record("2018_06_28_00_00.txt"), on_written=lambda: ran.append(1))
    assert ran == []
    assert len(list(read_records(tmp_path / "manifest.jsonl"))) == 1
    peer.close()


def test_retry_reopens_a_failed_file_but_done_is_final(manifest: Manifest) -> None:
    name = "2018_06_28_00_00.txt"
    manifest.commit(record(name, FAILED))
    manifest.commit(record(name, RETRY))
    assert not manifest.is_finished(name)
    manifest.commit(record(name, DONE))
    manifest.commit(record(name, RETRY))
    assert manifest.is_finished(name)


def test_concurrent_writers_in_threads_never_interleave(tmp_path: Path) -> None:
    managers = [Manifest(tmp_path / "m.jsonl", tmp_path / "m.lock") for _ in range(4)]

    def write(m: Manifest, k: int) -> None:
        for i in range(50):
            m.commit(record(f"2018_06_28_{k:02d}_{i:02d}.txt", pad="x" * 500))

    threads = [threading.Thread(target=write, args=(m, k)) for k, m in enumerate(managers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = list(read_records(tmp_path / "m.jsonl"))
    assert len(records) == 200
    assert len({r["file"] for r in records}) == 200
    for m in managers:
        m.close()


def test_threads_sharing_one_instance_commit_every_record_once(manifest: Manifest) -> None:
    def write(k: int) -> None:
        for i in range(50):
            assert manifest.commit(record(f"2018_06_28_{k:02d}_{i:02d}.txt", pad="x" * 500))

    threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = list(read_records(manifest.path))
    assert len({r["file"] for r in records}) == len(records) == 200
    assert len(manifest.status) == 200


def test_refresh_does_not_wait_for_a_commit_in_fsync(
    manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The next claim refreshes the manifest while the previous file's record is being
    # fsynced (slow on NFS): the reader must not queue behind the writer.
    in_fsync, let_go = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        in_fsync.set()
        let_go.wait(timeout=30)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    writer = threading.Thread(target=manifest.commit, args=(record("2018_06_28_00_00.txt"),))
    writer.start()
    assert in_fsync.wait(timeout=10)
    reader = threading.Thread(target=manifest.refresh)
    reader.start()
    reader.join(timeout=10)
    refreshed_during_fsync = not reader.is_alive()
    let_go.set()
    writer.join(timeout=10)
    assert refreshed_during_fsync
    assert manifest.is_finished("2018_06_28_00_00.txt")


def test_write_error_records_nothing(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError):
        manifest.commit(record("2018_06_28_00_00.txt"))
    monkeypatch.undo()
    assert not manifest.is_finished("2018_06_28_00_00.txt")
    assert manifest.commit(record("2018_06_28_00_00.txt"))


def _queued(manifest: Manifest, commits: list[tuple[dict[str, Any], Any]]) -> list[Any]:
    """Run `commits` (record, before_append) in threads that all queue behind a commit in
    progress; what each returned or raised, in order."""
    outcomes: list[Any] = [None] * len(commits)

    def commit(i: int, data: dict[str, Any], before: Any) -> None:
        try:
            outcomes[i] = manifest.commit(data, lambda: written.append(data["file"]), before)
        except Exception as exc:
            outcomes[i] = exc

    written: list[str] = []
    with manifest._group.holding():  # a commit in progress: the others queue
        threads = [threading.Thread(target=commit, args=(i, data, before))
                   for i, (data, before) in enumerate(commits)]  # fmt: skip
        for thread in threads:
            thread.start()
            while manifest._group.queued < threads.index(thread) + 1:
                threading.Event().wait(0.001)  # until it has queued: the order is fixed
    for thread in threads:
        thread.join(timeout=30)
    outcomes.append(written)
    return outcomes


def test_records_queued_behind_a_commit_share_one_append_each_fenced_alone(
    manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingestd.ledgers.file import manifest as module

    appends: list[bytes] = []
    real = module._append
    monkeypatch.setattr(
        module, "_append", lambda path, data: (appends.append(data), real(path, data))
    )
    manifest.commit(record("2018_06_28_00_00.txt"))
    appends.clear()

    def refuse() -> None:
        raise RuntimeError("the handler's transaction failed")

    *outcomes, written = _queued(manifest, [
        (record("2018_06_28_00_15.txt"), None),
        (record("2018_06_28_00_00.txt"), None),  # done already: fenced out
        (record("2018_06_28_00_30.txt"), refuse),  # its own failure only
        (record("2018_06_28_00_15.txt"), None),  # done earlier in the same batch
        (record("2018_06_28_00_45.txt", FAILED), None),
    ])  # fmt: skip
    assert outcomes[:2] == [True, False] and isinstance(outcomes[2], RuntimeError)
    assert outcomes[3:] == [False, True]
    assert len(appends) == 1  # one append and one fsync for the batch
    assert written == ["2018_06_28_00_15.txt", "2018_06_28_00_45.txt"]  # in record order
    names = [r["file"] for r in read_records(manifest.path)]
    assert names == ["2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "2018_06_28_00_45.txt"]


def test_a_failed_group_append_fails_every_record_in_it(
    manifest: Manifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    *outcomes, written = _queued(
        manifest, [(record("2018_06_28_00_00.txt"), None), (record("2018_06_28_00_15.txt"), None)]
    )
    monkeypatch.undo()
    assert all(isinstance(o, OSError) for o in outcomes) and written == []
    assert manifest.status == {}
    assert manifest.commit(record("2018_06_28_00_00.txt"))


def test_a_replaced_manifest_is_read_from_its_new_inode(tmp_path: Path) -> None:
    reader = Manifest(tmp_path / "manifest.jsonl", tmp_path / "manifest.lock")
    writer = Manifest(tmp_path / "manifest.jsonl", tmp_path / "manifest.lock")
    try:
        writer.commit(record("a"))
        reader.refresh()
        assert reader.is_finished("a")
        (tmp_path / "manifest.jsonl").rename(tmp_path / "manifest.jsonl.1")  # rotated away
        writer.commit(record("b"))  # appends go by path: a new file
        reader.refresh()
        assert reader.is_finished("b")  # read from the file the path names now
        assert reader.is_finished("a")  # and what it knew finished stays finished
        assert reader.replaced == 1
    finally:
        reader.close()
        writer.close()


def test_a_truncated_manifest_keeps_what_was_finished(tmp_path: Path) -> None:
    m = Manifest(tmp_path / "manifest.jsonl", tmp_path / "manifest.lock")
    try:
        m.commit(record("a"))
        m.commit(record("b"))
        os.truncate(tmp_path / "manifest.jsonl", 0)
        m.commit(record("c"))
        assert all(m.is_finished(n) for n in "abc")
    finally:
        m.close()


def test_records_written_to_the_old_file_just_before_a_switch_are_not_missed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "manifest.jsonl"
    reader = Manifest(path, tmp_path / "manifest.lock")
    try:
        path.write_bytes(encode(record("a")))
        reader.refresh()
        with open(path, "ab") as old:  # a peer's last append, not yet read here
            old.write(encode(record("b")))
        path.rename(tmp_path / "manifest.jsonl.1")
        path.write_bytes(encode(record("c")))
        reader.refresh()
        assert all(reader.is_finished(n) for n in "abc")
    finally:
        reader.close()


@given(
    worker=st.text(max_size=30),
    status=st.sampled_from(["done", "failed", "retry"]),
    attempt=st.one_of(st.none(), st.integers(-5, 10**6)),
    minutes=st.one_of(st.none(), st.integers(0, 10**9), st.floats(allow_nan=False,
                                                                 allow_infinity=False)),
    host=st.one_of(st.none(), st.text(max_size=10)),
    error=st.one_of(st.none(), st.text(max_size=40)),
)  # fmt: skip
def test_an_audits_summary_of_a_line_is_what_the_json_parser_reads(
    worker: str, status: str, attempt: int | None, minutes: float | None, host: str | None,
    error: str | None,
) -> None:  # fmt: skip
    from ingestd.contracts.ledger import Stored, Summary
    from ingestd.ledgers.file.manifest import summary_of

    record = {"file": "2018_06_28_00_00.txt", "status": status, "worker": worker,
              "host": host, "pid": 7, "attempt": attempt, "minutes": minutes,
              "finished_at": "2026-01-01T00:00:00+00:00", "error": error}  # fmt: skip
    line = encode(record).rstrip(b"\n")
    parsed = parse_record(line)
    assert parsed is not None
    summary = summary_of(line)
    stored = Stored.from_dict(parsed)
    assert stored is not None and summary == Summary.of(stored)


def test_one_files_records_are_found_across_chunk_boundaries(tmp_path, monkeypatch) -> None:
    from ingestd.ledgers.file import manifest

    monkeypatch.setattr(manifest, "_CHUNK", 7)  # lines straddle every chunk
    path = tmp_path / "manifest.jsonl"
    lines = [manifest.encode({"file": f"2018_06_28_00_{i % 4:02d}.txt", "status": "done",
                              "n": i}) for i in range(40)]  # fmt: skip
    path.write_bytes(b"".join(lines) + b'{"file":"2018_06_28_00_01.txt","sta')  # a torn tail
    wanted = b'"2018_06_28_00_01.txt"'
    found = list(manifest.read_records(path, lines_with=wanted))
    assert [r["n"] for r in found] == list(range(1, 40, 4))
    assert [r["n"] for r in manifest.read_records(path)] == list(range(40))


@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "file": st.sampled_from(
                    [
                        "2018_06_28_00_00.txt",
                        "a_2018_06_28_00_15.txt",
                        'x"y',
                        "caf\u00e9.txt",
                        "b\\c",
                    ]
                ),
                "status": st.sampled_from(["done", "failed", "retry", "redo", "DONE"]),
                "worker": st.sampled_from(["w1", "h:1", "w\u00fc", 'q"']),
                "attempt": st.one_of(st.none(), st.integers(-2, 9)),
                "minutes": st.one_of(
                    st.none(),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(0, 10**20),
                ),
                "finished_at": st.one_of(
                    st.none(), st.sampled_from(["", "2026-01-01T00:00:00", "a\\b"])
                ),
            }
        ),
        max_size=30,
    ),
    st.lists(st.sampled_from([b"", b"garbage", b"{}", b'{"file":"x"']), max_size=3),
)
def test_a_block_read_in_one_pass_says_what_each_line_says(records, junk) -> None:
    import tempfile

    from ingestd.ledgers.file import manifest

    # In the order the worker writes a record's fields, so the one-pass read applies.
    order = ("file", "status", "worker", "host", "pid", "attempt", "minutes", "finished_at")
    lines = [manifest.encode({k: {"host": None, "pid": 1, **r}[k] for k in order})
             for r in records]  # fmt: skip
    lines += [j + b"\n" for j in junk]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.jsonl"
        path.write_bytes(b"".join(lines))
        bad: list[int] = []
        fast = list(manifest.read_summaries(path, lambda offset, line: bad.append(offset)))
        one_by_one = [manifest.summary_of(line) for line, _ in manifest._lines_at(path)]
        blocks = manifest.read_summary_blocks(path, lambda offset, line: bad.append(offset))
        columns = [summary for block in blocks for summary in block.summaries()]
    assert fast == [s for s in one_by_one if s is not None]
    assert columns == fast
    assert len(bad) == 2 * sum(1 for s in one_by_one if s is None)


def test_the_one_pass_read_takes_what_the_worker_writes(tmp_path: Path) -> None:
    from ingestd.ledgers.file import manifest

    line = manifest.encode({"file": "2018_06_28_00_00.txt", "status": "done", "worker": "w",
                            "host": "h", "pid": 1, "attempt": 2, "minutes": 12.5,
                            "size": 3, "finished_at": "2026-01-01T00:00:00+00:00"})  # fmt: skip
    [summary] = manifest._fast_columns(line).summaries()
    assert summary == manifest.summary_of(line.rstrip(b"\n"))
    assert summary.minutes == 12.5 and summary.finished_at == "2026-01-01T00:00:00+00:00"
    assert manifest._fast_columns(line + b"garbage\n") is None  # the block goes line by line


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "b\\c.txt"]),
            st.sampled_from(["done", "failed", "retry", "redo"]),
        ),
        max_size=12,
    ),
    st.integers(0, 12),
)
def test_statuses_folded_in_blocks_are_those_folded_line_by_line(lines, cut) -> None:
    """Done wins over a later record but a redo, whether a block holds a name once, twice,
    or across two reads; a line the one-pass read does not take sends its block line by
    line."""
    import tempfile

    from ingestd.contracts.ledger import fold_statuses
    from ingestd.ledgers.file import manifest

    encoded = [manifest.encode({"file": f, "status": s, "worker": "w"}) for f, s in lines]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.jsonl"
        reader = Manifest(path, Path(tmp) / "manifest.lock")
        path.write_bytes(b"".join(encoded[:cut]))
        reader.refresh()
        with open(path, "ab") as out:
            out.write(b"".join(encoded[cut:]))
        reader.refresh()
        reader.close()
    assert reader.status == fold_statuses(lines)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "b\\c.txt"]),
            st.sampled_from(["done", "failed", "retry", "redo"]),
            st.sampled_from(["w1", "w\u00fc"]),
        ),
        max_size=14,
    )
)
def test_the_standing_failures_are_each_files_last_failure_still_standing(lines) -> None:
    """Read in blocks (one regex pass, or line by line where a line asks for it), as the
    line-by-line reading of the record history says."""
    import tempfile

    from ingestd.ledgers.file import manifest

    records = [{"file": f, "status": s, "worker": w, "error": f"e{i}"}
               for i, (f, s, w) in enumerate(lines)]  # fmt: skip
    expected: dict[str, dict] = {}
    status: dict[str, str] = {}
    for record in records:
        name, state = record["file"], record["status"]
        if status.get(name) == "done" and state != "redo":
            continue
        status[name] = state
        if state == "failed":
            expected[name] = record
        else:
            expected.pop(name, None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.jsonl"
        path.write_bytes(b"".join(manifest.encode(r) for r in records))
        found = manifest.standing_failed_records(path)
    assert found == {n: manifest.parse_record(manifest.encode(r)) for n, r in expected.items()}
