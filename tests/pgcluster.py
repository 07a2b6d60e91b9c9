"""A throwaway PostgreSQL cluster on a Unix socket in a temp dir, for tests and benchmarks.

Debian's server binaries (`initdb`, `pg_ctl`), run as the `postgres` user when we are root
(initdb refuses root). Nothing listens on TCP. `restart` plays a crash (`-m immediate`).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

_PORTS = itertools.count(54330)


def server_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PgCluster:
    def __init__(self, *, fsync: bool = False) -> None:
        bindir = server_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not installed (Debian: postgresql)")
        self.bindir = bindir
        self.base = Path(tempfile.mkdtemp(prefix="ingestd-pg-"))
        self.base.chmod(0o755)
        self.data = self.base / "data"
        self.port = str(next(_PORTS) + os.getpid() % 1000)
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
        self._options = f"-k {self.base} -p {self.port} -c listen_addresses=''" + (
            "" if fsync else " -c fsync=off"
        )
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as_postgres, str(self.bindir / tool), *args], check=True,
                       capture_output=True)  # fmt: skip

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-w", "-l", str(self.base / "log"), "start",
                  "-o", self._options)  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """A crash and a restart: what `pg_ctl restart -m immediate` does."""
        self.stop("immediate")
        self.start()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@/{dbname}?host={self.base}&port={self.port}"

    def psql(self, *commands: str, dbname: str = "postgres") -> str:
        args = [arg for command in commands for arg in ("-c", command)]
        result = subprocess.run(
            ["psql", "-h", str(self.base), "-p", self.port, "-U", "postgres", "-X", "-q",
             "-v", "ON_ERROR_STOP=1", "-At", *args, dbname],
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout

    def createdb(self, name: str) -> str:
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
