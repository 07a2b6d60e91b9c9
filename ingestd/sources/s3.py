"""An S3-style bucket as a source: `s3://BUCKET[/PREFIX]`, read with boto3.

Discovery is by listing (ListObjectsV2, one level under the prefix: "folders" come back as
common prefixes and are ignored like directories). Names sort by time, so a scan lists only
from the finished floor (the newest name below which everything is finished) minus a look-back
window for late uploads, with `StartAfter`: its cost stays flat as finished objects pile up.
(Keyed names, `KEY_...`, sort by key first, not by time: once a listing has seen one, every
scan lists from the start, which is correct but no longer flat.)
Every `full_every` scans one listing starts at the beginning, the backstop for an upload later
than the window. Objects appear whole (S3's PUT is atomic), so nothing settles; the signature
is (size, ETag), so an object overwritten after it was done is noticed.

Content is streamed (`open`); `read_head` is a ranged GET. Errors become what the worker
already understands: a missing key `FileNotFoundError` (skipped: deleted between listing and
reading), access denied `PermissionError`, a server that cannot be reached or fails `OSError`
(scans log `scan_failed` and retry; claims stall without spending an attempt), and a read cut
off mid-object `RetryLater` (given back, no attempt spent). At start-up (`exists`) a missing
bucket or refused credentials is one line and exit 2; an unreachable server is waited for.

Assumes S3's strong read-after-write and list-after-write consistency (AWS since December
2020, and the usual S3-compatible servers); a server without it is not supported.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from ingestd.contracts.errors import RetryLater, StartupError
from ingestd.contracts.naming import default_scheme, format_name, is_data_name, key_of, parse_name
from ingestd.contracts.source import (
    DELETE,
    MOVE,
    Changed,
    Content,
    Disposal,
    ScanResult,
    Signature,
    Source,
    aside_name,
    check_content,
)
from ingestd.runtime.settings import Settings, yes_no

_YEAR_PREFIX = re.compile(r"\d{4}_")
LOOK_BACK = timedelta(hours=24)  # how late an upload may land and still be seen at once
FULL_EVERY = 60  # one scan in this many lists the whole prefix
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})
# The credentials themselves refused (keys rotated, a token expired): every request will fail
# alike, so it is an outage of the worker, not a trouble of one object.
_REFUSED = frozenset({"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
                      "TokenRefreshRequired", "AllAccessDisabled", "InvalidToken"})  # fmt: skip
_DENIED = frozenset({"AccessDenied", "403", "Forbidden"}) | _REFUSED
_NO_BUCKET = frozenset({"NoSuchBucket"})


class SourceRefused(OSError):
    """The server refuses our credentials: nothing can be read until someone fixes them."""


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str  # "" or ending with "/"

    @classmethod
    def parse(cls, url: str) -> Location:
        """`s3://BUCKET[/PREFIX]`; ValueError if it is not one."""
        if not url.startswith("s3://"):
            raise ValueError(f"{url!r} is not an s3:// URL")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise ValueError(f"{url!r}: no bucket name")
        prefix = prefix.strip("/")
        return cls(bucket, prefix + "/" if prefix else "")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass
class ListingStats:
    """What the last scan cost: for logs, benchmarks and the flat-cost test."""

    requests: int = 0
    keys: int = 0
    full: bool = False
    start_after: str = ""


def _boto3() -> Any:
    try:
        import boto3
    except ImportError:
        raise StartupError(
            "an s3:// source needs the s3 extra: pip install 'ingestd[s3]'"
        ) from None
    return boto3


def make_client(endpoint_url: str | None, region: str | None, path_style: bool) -> Any:
    """A boto3 S3 client: the standard credentials chain, and AWS_ENDPOINT_URL if set."""
    boto3 = _boto3()
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path" if path_style else "auto"},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
    )
    # A session per source: boto3's default session is shared and not thread-safe to create
    # clients from; the client itself is safe to share between threads.
    return boto3.session.Session().client(
        "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
    )


class S3Source:
    atomic = True  # a PUT appears whole: nothing to settle

    def __init__(
        self,
        url: str,
        client: Any,
        look_back: timedelta = LOOK_BACK,
        full_every: int = FULL_EVERY,
    ) -> None:
        self.location = Location.parse(url)
        self.description = str(self.location)
        self.look_back = look_back
        self.full_every = full_every
        self.last_scan = ListingStats()
        self._client = client
        self._floor: str | None = None  # every data name up to this one is finished
        self._finished_etags: dict[str, str] = {}
        self._scans = 0
        self._keyed = False  # a keyed name was listed: names no longer sort by time
        self._mutex = threading.Lock()

    # ---- errors ----

    def _key(self, name: str) -> str:
        return self.location.prefix + name

    def _os_error(self, exc: Exception, what: str) -> OSError:
        """A boto3/botocore error as the OSError the worker and discovery understand."""
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            message = f"{what}: {code} {error.get('Message', '')}".strip()
            if code in _MISSING:
                return FileNotFoundError(errno.ENOENT, message)
            if code in _REFUSED:
                return SourceRefused(errno.EACCES, message)
            if code in _DENIED:
                return PermissionError(errno.EACCES, message)
            return OSError(errno.EIO, message)
        return OSError(errno.EIO, f"{what}: {exc}")

    def _call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(**kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise self._os_error(exc, what) from None

    # ---- Source ----

    def exists(self) -> bool:
        """Whether the bucket answers. `StartupError` (exit 2 at start-up) for a missing
        bucket or refused credentials; an unreachable server is False: waited for, like a
        directory still to be mounted."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._client.list_objects_v2(
                Bucket=self.location.bucket, Prefix=self.location.prefix, MaxKeys=1
            )
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in _NO_BUCKET or code in _DENIED:
                raise StartupError(
                    f"{self.description}: {code}: {error.get('Message', '')}".rstrip(": ")
                ) from None
            return False
        except BotoCoreError:
            return False
        return True

    def scan(self, skip: Callable[[str], bool]) -> ScanResult:
        with self._mutex:
            full = self._floor is None or self._scans % self.full_every == 0
            self._scans += 1
            start_after = "" if full else self._start_after(self._floor)
        stats = ListingStats(full=full, start_after=start_after)
        if start_after and self._keys_before_window(stats):
            start_after = stats.start_after = ""  # a keyed name the window would miss
        result = ScanResult()
        floor: str | None = None
        below_all_finished = True
        etags: dict[str, str] = {}
        for entry in self._list(start_after, stats):
            if isinstance(entry, str):  # a common prefix: a "folder"
                result.ignored[entry] = "directory"
                continue
            name, size, etag = entry
            if not is_data_name(name):
                result.ignored[name] = "name"
                continue
            if not self._keyed and key_of(name):
                self._keyed = True
            if skip(name):
                if below_all_finished:
                    floor = name
                etags[name] = etag
                if self._finished_etags.get(name, etag) != etag:
                    result.changed.append(name)  # overwritten after it was finished
                continue
            below_all_finished = False
            result.candidates[name] = (size, _etag_number(etag))
        with self._mutex:
            self._finished_etags = etags  # what this listing covered: bounded by the window
            if full or floor is not None:
                # A full listing knows the floor; an incremental one only moves it up.
                self._floor = floor if full else max(floor or "", self._floor or "")
        self.last_scan = stats
        return result

    def _keys_before_window(self, stats: ListingStats) -> bool:
        """Whether names of a key have appeared: one listing of the prefixes before the first
        `_` (a year, `2018_`, for names without a key), so a keyed name that sorts before the
        window (`1_2018_...`) is found at this scan, not at the next full one. A key of four
        digits looks like a year here; the full listing finds its names."""
        page = self._call("list", self._client.list_objects_v2, Bucket=self.location.bucket,
                          Prefix=self.location.prefix, Delimiter="_")  # fmt: skip
        stats.requests += 1
        prefix = self.location.prefix
        for common in page.get("CommonPrefixes", ()):
            head = common["Prefix"][len(prefix) :]
            if "/" not in head and not _YEAR_PREFIX.fullmatch(head):
                self._keyed = True
                return True
        return False

    def _start_after(self, floor: str | None) -> str:
        stamp = parse_name(floor) if floor else None
        if stamp is None or self._keyed or not default_scheme():
            return ""  # keyed or other names do not sort by time: no window can be trusted
        return self.location.prefix + format_name(stamp - self.look_back)

    def _list(self, start_after: str, stats: ListingStats) -> Iterator[str | tuple[str, int, str]]:
        """Names one level under the prefix (or "folder/" for a common prefix), in key order."""
        prefix = self.location.prefix
        kwargs: dict[str, Any] = {
            "Bucket": self.location.bucket, "Prefix": prefix, "Delimiter": "/",
        }  # fmt: skip
        if start_after:
            kwargs["StartAfter"] = start_after
        while True:
            page = self._call("list", self._client.list_objects_v2, **kwargs)
            stats.requests += 1
            for common in page.get("CommonPrefixes", ()):
                yield common["Prefix"][len(prefix) :]
            for item in page.get("Contents", ()):
                stats.keys += 1
                name = item["Key"][len(prefix) :]
                if name:  # the prefix's own "folder" marker
                    yield name, int(item["Size"]), str(item.get("ETag", ""))
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]
            kwargs.pop("StartAfter", None)

    def names(self) -> set[str]:
        # A full listing of its own: the scan's window and remembered ETags stay the scan's.
        entries = self._list("", ListingStats(full=True, start_after=""))
        return {e[0] for e in entries if not isinstance(e, str) and is_data_name(e[0])}

    def signature(self, name: str) -> Signature | None:
        try:
            head = self._call(name, self._client.head_object, Bucket=self.location.bucket,
                              Key=self._key(name))  # fmt: skip
        except FileNotFoundError:
            return None
        return (int(head["ContentLength"]), _etag_number(str(head.get("ETag", ""))))

    def open(self, name: str) -> BinaryIO:
        response = self._call(name, self._client.get_object, Bucket=self.location.bucket,
                              Key=self._key(name))  # fmt: skip
        return io.BufferedReader(_Body(response["Body"], name), 1 << 20)

    def read_head(self, name: str, limit: int) -> bytes:
        return self.read_start(name, limit)[0]

    def read_start(self, name: str, limit: int) -> tuple[bytes, str | None]:
        """One ranged GET: the bytes and the ETag of the very object they came from (no
        HEAD beside it, whose refusals carry no error code)."""
        try:
            response = self._call(name, self._client.get_object, Bucket=self.location.bucket,
                                  Key=self._key(name), Range=f"bytes=0-{limit}")  # fmt: skip
        except OSError as exc:
            if "InvalidRange" in str(exc):  # an empty object has no byte 0
                return b"", self.version(name)
            raise
        with _Body(response["Body"], name) as body:
            return body.read(limit + 1), str(response.get("ETag", "")) or None

    def digest(self, name: str) -> tuple[int, str]:
        digest = hashlib.sha256()
        size = 0
        with self.open(name) as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def version(self, name: str) -> str | None:
        return self._etag_of(self._key(name))

    def versions(self) -> dict[str, str]:
        entries = self._list("", ListingStats(full=True, start_after=""))
        return {e[0]: e[2] for e in entries if not isinstance(e, str) and is_data_name(e[0])}

    def dispose(self, name: str, disposal: Disposal, processed: Content) -> None:
        """Only while the object is the one processed: the copy names its ETag
        (`CopySourceIfMatch`), the delete too (`IfMatch`, where the server has it; a look
        just before, where it ignores it). A taken target name gets the copy beside it."""
        bucket, key = self.location.bucket, self._key(name)
        etag = self.version(name)
        if etag is None:
            raise FileNotFoundError(errno.ENOENT, f"{name}: gone")
        check_content(name, processed, etag, lambda: self.digest(name))
        if disposal.kind == MOVE:
            # A copy then a delete: a crash between them leaves the original, and the next
            # scan does it again (finding its copy already there).
            target = self.move_prefix(disposal) + name
            existing = self._etag_of(target)
            if existing is not None and existing != etag:
                target = self.move_prefix(disposal) + aside_name(name)
            if existing != etag:
                self._conditional(name, etag, self._client.copy_object, Bucket=bucket,
                                  Key=target, CopySource={"Bucket": bucket, "Key": key},
                                  CopySourceIfMatch=etag)  # fmt: skip
        if disposal.kind in (MOVE, DELETE):
            if self._etag_of(key) not in (etag, None):
                raise Changed(name, None, None)
            self._conditional(name, etag, self._client.delete_object, Bucket=bucket, Key=key,
                              IfMatch=etag)  # fmt: skip

    def _etag_of(self, key: str) -> str | None:
        """The ETag of the object at `key` (a whole key, prefix included); None if none."""
        try:
            head = self._call(key, self._client.head_object, Bucket=self.location.bucket,
                              Key=key)  # fmt: skip
        except FileNotFoundError:
            return None
        return str(head.get("ETag", ""))

    def _conditional(self, name: str, etag: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """A call conditional on the object's ETag; `Changed` when the server says it moved on."""
        from botocore.exceptions import ClientError

        try:
            return fn(**kwargs)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("PreconditionFailed", "412"):
                raise Changed(name, None, None) from None
            raise self._os_error(exc, name) from None
        except Exception as exc:
            from botocore.exceptions import BotoCoreError

            if isinstance(exc, BotoCoreError):
                raise self._os_error(exc, name) from None
            raise

    def move_prefix(self, disposal: Disposal) -> str:
        """`move:TARGET` as a key prefix: relative to the source's prefix, `/x` from the root."""
        target = disposal.target.rstrip("/") + "/"
        return target.lstrip("/") if target.startswith("/") else self.location.prefix + target

    def watch_appearance(self, loop: Any, wake: Any) -> None:
        return None  # a bucket is polled until it answers

    def clock(self) -> None:
        return None  # atomic: nothing settles

    def is_closed(self, name: str) -> None:
        return None

    def watch(self, loop: Any, on_event: Any, log: Any) -> None:
        return None  # listing is the source of truth


class _Body(io.RawIOBase):
    """botocore's streaming body as a raw stream; a read cut off is `RetryLater`."""

    def __init__(self, body: Any, name: str) -> None:
        self._body = body
        self._name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        from botocore.exceptions import BotoCoreError

        try:
            data = self._body.read(len(buffer))
        except (BotoCoreError, OSError) as exc:
            raise RetryLater(f"{self._name}: reading from the bucket failed: {exc}") from None
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


def _etag_number(etag: str) -> int:
    """An ETag as the int half of a signature (equal ETags, equal numbers)."""
    return int.from_bytes(hashlib.blake2b(etag.encode(), digest_size=7).digest(), "big")


class BucketKind:
    """`s3://BUCKET[/PREFIX]`: `ingestd.sources.KINDS["s3"]`."""

    scheme = "s3"
    has_directory = False  # state and outputs live where the options say
    exact_mtimes = False  # a signature holds the ETag
    rescan_interval = 15.0  # 4 LISTs a minute, cents a month (docs/guides/buckets.md)

    def parse(self, location: str) -> str:
        Location.parse(location)  # ValueError says what is wrong
        return location

    def identity(self, location: str) -> str:
        return str(Location.parse(location))

    def default_state_dir(self, location: str) -> None:
        return None  # coordination cannot live in the bucket

    def default_output_dir(self, location: str) -> None:
        return None

    def inode(self, location: str) -> None:
        return None

    def for_run(self, settings: Settings) -> S3Source:
        client = make_client(settings.s3_endpoint_url, settings.s3_region, settings.s3_path_style)
        return S3Source(settings.source, client)

    def start_checks(self, source: Source, settings: Settings) -> list[Callable[[], None]]:
        return []

    def for_operator(self, location: str, state_dir: Path | None) -> S3Source:
        """Without settings, the INGESTD_S3_* and AWS_* variables alone say where it is."""
        endpoint = os.environ.get("INGESTD_S3_ENDPOINT_URL") or None
        region = os.environ.get("INGESTD_S3_REGION") or None
        try:
            path_style = yes_no(os.environ.get("INGESTD_S3_PATH_STYLE") or "no")
        except ValueError:
            path_style = False  # `run` refuses a bad value; a status probe must still answer
        return S3Source(location, make_client(endpoint, region, path_style))

    def problem(self, location: str) -> str | None:
        try:
            Location.parse(location)
        except ValueError as exc:
            return str(exc)
        return None

    def holds_path(self, location: str, path: str) -> bool:
        return False


KIND = BucketKind()
