"""What every source promises, one suite run against each: a directory, memory, and a bucket on
a real S3-compatible server.

A backend here is a source with a way to put a file into it as a provider would (a write into
the directory, a PUT into the bucket) and to take one away. The daemon relies on nothing else:
what a scan lists, what a claim reads, what a digest says, and that a disposal happens only
while the source still holds the content that was processed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ingestd.contracts.source import Changed, Content, Disposal, Source
from ingestd.sources.local import LocalSource
from ingestd.sources.memory import MemorySource
from ingestd.sources.s3 import KIND as BUCKETS

A, B = "2018_06_28_00_00.txt", "2018_06_28_00_15.txt"


@dataclass
class Backend:
    source: Source
    put: Callable[[str, bytes], None]
    remove: Callable[[str], None]
    moved: Callable[[str, str], bytes | None]  # (target, name): what a move put there


def local_backend(tmp_path: Path) -> Iterator[Backend]:
    data = tmp_path / "drop"
    data.mkdir()

    def put(name: str, content: bytes) -> None:
        temp = data / f".{name}.tmp"
        temp.write_bytes(content)
        os.replace(temp, data / name)  # whole, as a careful provider writes it

    def moved(target: str, name: str) -> bytes | None:
        path = data / target / name
        return path.read_bytes() if path.exists() else None

    yield Backend(LocalSource(data, events=False), put, lambda n: (data / n).unlink(), moved)


def memory_backend(tmp_path: Path) -> Iterator[Backend]:
    source = MemorySource()
    yield Backend(source, source.put, source.remove, lambda target, name: None)


def bucket_backend(server: Any) -> Iterator[Backend]:
    bucket = server.bucket()
    client = server.client()

    def put(name: str, content: bytes) -> None:
        client.put_object(Bucket=bucket, Key=f"in/{name}", Body=content)

    def remove(name: str) -> None:
        client.delete_object(Bucket=bucket, Key=f"in/{name}")

    def moved(target: str, name: str) -> bytes | None:
        try:
            found = client.get_object(Bucket=bucket, Key=f"in/{target}/{name}")
        except client.exceptions.NoSuchKey:
            return None
        body: bytes = found["Body"].read()
        return body

    yield Backend(BUCKETS.for_operator(f"s3://{bucket}/in", None), put, remove, moved)


@pytest.fixture(params=[pytest.param("s3", marks=[pytest.mark.server, pytest.mark.s3]), "local",
                        "memory"])  # fmt: skip
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "s3":
        yield from bucket_backend(request.getfixturevalue("s3_server"))
    elif request.param == "local":
        yield from local_backend(tmp_path)
    else:
        yield from memory_backend(tmp_path)


def test_a_scan_lists_data_files_with_their_size_and_skips_what_it_is_told(
    backend: Backend,
) -> None:
    source = backend.source
    assert source.exists()
    backend.put(A, b"12")
    backend.put(B, b"3456")
    backend.put("notes.md", b"not data")
    result = source.scan(lambda _: False)
    assert {name: size for name, (size, _) in result.candidates.items()} == {A: 2, B: 4}
    assert "notes.md" not in result.candidates
    assert set(source.scan(lambda name: name == A).candidates) == {B}
    assert source.names() == {A, B}


def test_reads_digests_and_signatures_say_what_the_file_holds(backend: Backend) -> None:
    source, content = backend.source, b"x" * 5000
    backend.put(A, content)
    head, version = source.read_start(A, 4096)
    assert head == content[:4097] and version is not None  # one byte more than the cap
    assert source.read_head(A, 10) == content[:11]
    with source.open(A) as stream:
        assert stream.read() == content
    assert source.digest(A) == (5000, hashlib.sha256(content).hexdigest())
    signature = source.signature(A)
    assert signature is not None and signature[0] == 5000
    assert source.version(A) == version and source.versions() == {A: version}


def test_a_file_that_is_not_there_is_file_not_found(backend: Backend) -> None:
    source = backend.source
    assert source.signature(A) is None and source.version(A) is None
    for read in (lambda: source.read_start(A, 10), lambda: source.digest(A)):
        with pytest.raises(FileNotFoundError):
            read()
    backend.put(A, b"1")
    backend.remove(A)
    with pytest.raises(FileNotFoundError):
        source.read_start(A, 10)


def test_a_new_content_under_the_same_name_is_a_new_version(backend: Backend) -> None:
    source = backend.source
    backend.put(A, b"first")
    first = source.version(A)
    backend.put(A, b"second, longer")
    assert source.version(A) not in (None, first)


def test_a_disposal_happens_only_while_the_processed_content_is_there(backend: Backend) -> None:
    source = backend.source
    backend.put(A, b"processed")
    processed = Content(source.version(A), hashlib.sha256(b"processed").hexdigest())
    backend.put(A, b"re-delivered")  # other content under the finished name
    with pytest.raises(Changed) as caught:
        source.dispose(A, Disposal.parse("delete"), processed)
    assert caught.value.sha256 == hashlib.sha256(b"re-delivered").hexdigest()
    assert source.digest(A)[0] == len(b"re-delivered")  # nothing destroyed
    now = Content(source.version(A), hashlib.sha256(b"re-delivered").hexdigest())
    source.dispose(A, Disposal.parse("delete"), now)
    assert source.signature(A) is None
    with pytest.raises(FileNotFoundError):
        source.dispose(A, Disposal.parse("delete"), now)  # a peer was quicker


def test_the_same_bytes_delivered_again_may_still_be_disposed_of(backend: Backend) -> None:
    source = backend.source
    backend.put(A, b"same")
    processed = Content(source.version(A), hashlib.sha256(b"same").hexdigest())
    backend.put(A, b"same")  # a new version, the very content that was processed
    source.dispose(A, Disposal.parse("delete"), processed)
    assert source.signature(A) is None


def test_a_move_keeps_the_name_under_the_target(backend: Backend, tmp_path: Path) -> None:
    source = backend.source
    backend.put(A, b"done")
    processed = Content(source.version(A), hashlib.sha256(b"done").hexdigest())
    if isinstance(source, LocalSource):
        (source.data_dir / "done").mkdir()
    source.dispose(A, Disposal.parse("move:done"), processed)
    assert source.signature(A) is None
    kept = None if isinstance(source, MemorySource) else b"done"  # memory has nowhere to keep it
    assert backend.moved("done", A) == kept
