"""A real S3-compatible server on 127.0.0.1 for tests and benchmarks: moto's server, in this
process, on a port of its own. Its objects live in this process, so `restart` (stop the HTTP
server, start it again on the same port) keeps them, as a real server's restart would.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator
from typing import Any

# Test credentials: moto accepts any; set before boto3 reads its configuration.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ingestd-test",
    "AWS_SECRET_ACCESS_KEY": "ingestd-test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class S3Server:
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
