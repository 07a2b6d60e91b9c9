"""Shared fixtures: real worker and provider processes in tmp_path, and their JSON logs."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import structlog

from ingestd import sources
from ingestd.ledgers import Where
from ingestd.ledgers.file.kind import KIND as FILE_LEDGER
from ingestd.runtime.stats import RunningStats

ROOT = Path(__file__).resolve().parent.parent
SIMULATION = ROOT / "simulation.py"


@dataclass
class Proc:
    """A real `python -m ingestd` (or simulation) process with its output in a file."""

    popen: subprocess.Popen[bytes]
    log_path: Path
    name: str
    killed_at: list[float] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return read_json_log(self.log_path)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("event") == event]

    def wait(self, timeout: float = 60) -> int:
        return self.popen.wait(timeout=timeout)

    def kill(self) -> None:
        self.killed_at.append(time.time())
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.popen.wait(timeout=timeout)

    @property
    def text(self) -> str:
        return self.log_path.read_text(errors="replace")


def read_json_log(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):  # a line cut by SIGKILL
                out.append(json.loads(line))
    return out


def wait_for(predicate: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def assert_stats_match_manifest(
    logs: list[dict[str, Any]], manifest: list[dict[str, Any]], worker: str, complete: bool
) -> None:
    """Every `stats` line a worker logged equals its own manifest records, in manifest order.

    `complete`: the worker shut down cleanly, so its last line counts all of its records
    (and a worker that finished nothing logged no stats line at all).
    """
    mine = [r["minutes"] for r in manifest if r["status"] == "done" and r["worker"] == worker]
    running = RunningStats()
    by_count = {0: running.fields()}
    for minutes in mine:
        running.add(minutes)
        by_count[running.count] = running.fields()
    stats = [r for r in logs if r["event"] == "stats"]
    for line in stats:
        fields = {k: line[k] for k in ("files_processed", "total_time", "sum_of_squares")}
        assert fields == by_count[line["files_processed"]], worker
    if complete and mine:
        assert stats, f"{worker} logged no stats"
        assert stats[-1]["files_processed"] == len(mine)  # the final line at shutdown
    elif complete:
        assert stats == [], f"{worker} did nothing and said so"  # no "Files processed: 0"


END_EVENTS = {
    "file_done", "file_failed", "duplicate_suppressed", "handler_error", "commit_failed",
    "file_io_error", "file_unreadable", "file_skipped", "already_finished",
}  # fmt: skip


def epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def holding_intervals(procs: list[Proc]) -> dict[str, list[tuple[float, float, str]]]:
    """For each file, every (start, end, worker) during which a worker held its claim."""
    intervals: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for proc in procs:
        open_claims: dict[str, float] = {}
        for record in proc.records():
            event, name = record["event"], record.get("file")
            if event == "file_claimed":
                open_claims[name] = epoch(record["timestamp"])
            elif event in END_EVENTS and name in open_claims:
                intervals[name].append(
                    (open_claims.pop(name), epoch(record["timestamp"]), proc.name)
                )
            elif event == "shutdown":
                end = epoch(record["timestamp"])
                for held in record["released_unfinished"]:
                    intervals[held].append((open_claims.pop(held), end, proc.name))
        # Killed: whatever it held, it held until the moment it was killed.
        end = proc.killed_at[0] if proc.killed_at else time.time()
        for held, start in open_claims.items():
            intervals[held].append((start, end, proc.name))
    return intervals


def manifest_records(data_dir: Path, state_dir: Path | None = None) -> list[dict[str, Any]]:
    """The records of DIR's ledger (its state dir by default), read as an operator command
    reads them (a torn line is skipped, as the daemon's reader does), as dicts to compare."""
    location = str(data_dir)
    state = state_dir or sources.kind(location).default_state_dir(location)
    where = Where(None, state, "ingestd", sources.identity(location))
    return [record.to_dict() for record in FILE_LEDGER.for_operator(where).records()]


def done_names(data_dir: Path) -> list[str]:
    return [r["file"] for r in manifest_records(data_dir) if r["status"] == "done"]


SERVERS = frozenset({"pg", "pg_cluster", "s3_server"})
POSTGRES = frozenset({"pg", "pg_cluster"})
S3 = frozenset({"s3_server"})
PROCESSES = frozenset({"spawn", "provider"})
E2E = Path(__file__).resolve().parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`server`: needs a real PostgreSQL or S3 server (`postgres`, `s3`: which); `process`:
    starts ingestd processes (every test under e2e/ does). `make test-fast` leaves both out."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & SERVERS:
            item.add_marker(pytest.mark.server)
        if names & POSTGRES:
            item.add_marker(pytest.mark.postgres)
        if names & S3:
            item.add_marker(pytest.mark.s3)
        if names & PROCESSES or E2E in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.process)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """An existing, empty data directory."""
    path = tmp_path / "drop"
    path.mkdir()
    return path


@pytest.fixture
def locks(tmp_path: Path) -> Path:
    """An empty locks folder, as a state dir holds one."""
    path = tmp_path / "locks"
    path.mkdir()
    return path


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Proc]]:
    """spawn(data_dir, *args, name=...) starts a worker with JSON logs; all are killed after."""
    procs: list[Proc] = []
    counter = iter(range(1000))

    def start(
        data_dir: Path, *args: str, name: str | None = None, env: dict[str, str] | None = None
    ) -> Proc:
        name = name or f"w{next(counter)}"
        log_path = tmp_path / f"{name}.log"
        command = [
            sys.executable, "-m", "ingestd", str(data_dir),
            "--worker-id", name, "--log-format", "json", "--rescan-interval", "0.2",
            "--settle", "0.2", *args,
        ]  # fmt: skip
        with open(log_path, "ab") as out:
            popen = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
                env={**os.environ, **(env or {})},
            )  # fmt: skip
        proc = Proc(popen, log_path, name)
        procs.append(proc)
        return proc

    yield start
    stop_all(procs)


def stop_all(procs: list[Proc], how: str = "kill") -> None:
    """End every process still running (`kill`, or `terminate`) and reap it."""
    for proc in procs:
        if proc.popen.poll() is None:
            getattr(proc.popen, how)()
            proc.popen.wait(timeout=10)


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """provider(data_dir, *args) starts simulation.py; waited for (or killed) after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
        with open(tmp_path / "provider.log", "ab") as out:
            popen = subprocess.Popen(
                [sys.executable, str(SIMULATION), str(data_dir), *args],
                stdout=out, stderr=subprocess.STDOUT, cwd=tmp_path,
            )  # fmt: skip
        procs.append(popen)
        return popen

    yield start
    for popen in procs:
        if popen.poll() is None:
            popen.kill()
        popen.wait(timeout=10)


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    """In-process CLI runs configure logging for the process: undo it after each test."""
    yield
    structlog.reset_defaults()


@pytest.fixture(autouse=True)
def default_names() -> Iterator[None]:
    """An in-process CLI run with --key-pattern sets the naming for the process: undo it."""
    yield
    from ingestd.contracts import naming

    naming.use_pattern(None)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """A test that leaves a thread running (an observer not stopped) fails."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        leaked = [
            t for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.name.startswith("asyncio_")
            # The session's S3 server, when a test restarted it: it lives on, on purpose.
            and not t.name.endswith("(_server_entry)")
        ]  # fmt: skip
        if not leaked:
            return
        time.sleep(0.05)
    raise AssertionError(f"threads leaked: {leaked}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Any]:
    """One throwaway PostgreSQL server for the whole run (tests/pgcluster.py)."""
    from pgcluster import PgCluster, locate

    server = locate()
    if server is None:  # the test extra brings the wheel: only a forced choice ends here
        pytest.fail("no PostgreSQL server: INGESTD_TEST_POSTGRES names one not installed")
    cluster = PgCluster(server=server)
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg(pg_cluster: Any, request: pytest.FixtureRequest) -> Any:
    """A fresh database on the shared server for this test; `pg.url`, `pg.psql(...)`."""
    name = "t_" + "".join(c if c.isalnum() else "_" for c in request.node.name)[-55:].lower()
    pg_cluster.psql(f'DROP DATABASE IF EXISTS "{name}"')
    url = pg_cluster.createdb(name)

    class Database:
        def __init__(self) -> None:
            self.url = url
            self.cluster = pg_cluster

        def psql(self, *commands: str) -> str:
            return pg_cluster.psql(*commands, dbname=name)

    return Database()


def hold_copy(pg: Any, table: str, row_id: int) -> Callable[[], None]:
    """Hold any insert into `table` at the row whose id is `row_id` (a trigger sleeps there),
    so a worker can be killed with its COPY partly sent however fast the machine; wait for
    it with `copy_held`, then call what this returns to lift the hold."""
    pg.psql(
        "CREATE TABLE hold (on_row bigint)",
        f"INSERT INTO hold VALUES ({int(row_id)})",
        "CREATE FUNCTION held() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        " IF EXISTS (SELECT 1 FROM hold WHERE on_row = NEW.id) THEN PERFORM pg_sleep(60);"
        " END IF; RETURN NEW; END $$",
        f"CREATE TRIGGER held BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION held()",
    )

    def lift() -> None:
        pg.psql(
            "DELETE FROM hold",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE wait_event = 'PgSleep'",
        )

    return lift


def copy_held(pg: Any) -> bool:
    return (
        pg.psql("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'").strip() == "1"
    )


@pytest.fixture(scope="session")
def s3_server() -> Iterator[Any]:
    """A real S3-compatible server (tests/s3server.py: SeaweedFS, or moto's) for the whole run;
    its AWS_* settings are in os.environ meanwhile, so workers started by `spawn` reach it."""
    from s3server import start_server

    server = start_server()  # INGESTD_TEST_S3: seaweedfs (default) or moto
    saved = {k: os.environ.get(k) for k in server.env}
    os.environ.update(server.env)
    yield server
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    getattr(server, "destroy", server.stop)()
