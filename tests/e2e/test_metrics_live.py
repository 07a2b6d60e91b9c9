"""Prometheus metrics from real worker processes: the textfile, the HTTP endpoint and its probes,
`status --prometheus`, all against the manifest."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from builders import samples
from conftest import manifest_records, wait_for

from ingestd import __version__


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_metrics_agree_with_the_manifest_after_a_run_with_a_takeover(
    tmp_path: Path, data: Path, spawn
) -> None:
    (data / "2018_06_28_00_00.txt").write_text("30\n")  # a long one: its worker is killed
    for minute in range(15, 15 * 12, 15):
        (data / f"2018_06_28_{minute // 60:02d}_{minute % 60:02d}.txt").write_text("12\n")
    (data / "2018_06_28_05_00.txt").write_text("not a number\n")  # failed
    a = spawn(data, "--seconds-in-min", "10", "--heartbeat-interval", "0.2", name="a")
    wait_for(lambda: a.events("file_claimed"), what="a at work on the long file")
    a.kill()
    port = _free_port()
    prom = {name: tmp_path / f"{name}.prom" for name in ("b", "c")}
    b = spawn(data, "--seconds-in-min", "0.01", "--heartbeat-interval", "0.2",
              "--metrics-textfile", str(prom["b"]), "--metrics-listen", f"127.0.0.1:{port}",
              name="b")  # fmt: skip
    c = spawn(data, "--seconds-in-min", "0.01", "--heartbeat-interval", "0.2",
              "--metrics-textfile", str(prom["c"]), name="c")  # fmt: skip
    wait_for(lambda: len({r["file"] for r in manifest_records(data)}) == 13, what="13 records")
    # The endpoint serves what the textfile holds (both from one registry, refreshed together).
    served = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()
    assert samples(served.decode()).keys() == samples(prom["b"].read_text()).keys()
    assert b.terminate() == 0 and c.terminate() == 0

    manifest = manifest_records(data)
    totals: Counter[str] = Counter()
    for name in ("b", "c"):
        got = samples(prom[name].read_text())  # the final write, at shutdown
        worker = [r for r in manifest if r["worker"] == name]
        done = [r for r in worker if r["status"] == "done"]
        assert got["ingestd_files_total{outcome=done}"] == sum(r["attempt"] == 1 for r in done)
        assert got["ingestd_files_total{outcome=redone}"] == sum(r["attempt"] > 1 for r in done)
        assert got["ingestd_processing_seconds_count"] == len(worker)
        assert got["ingestd_arrival_to_done_seconds_count"] == len(done)
        assert got["ingestd_ledger_files"] == 13
        assert got["ingestd_files_failed"] == 1
        assert got["ingestd_files_in_progress"] == 0
        assert got[f"ingestd_build_info{{version={__version__}}}"] == 1
        for outcome in ("done", "redone", "failed", "duplicate_suppressed"):
            totals[outcome] += int(got[f"ingestd_files_total{{outcome={outcome}}}"])
    assert totals == {"done": 11, "redone": 1, "failed": 1, "duplicate_suppressed": 0}

    fleet = subprocess.run([sys.executable, "-m", "ingestd", "status", str(data), "--prometheus"],
                           capture_output=True, text=True, timeout=30)  # fmt: skip
    assert fleet.returncode == 0, fleet.stderr  # though a file failed: the numbers say so
    got = samples(fleet.stdout)
    assert got["ingestd_files_total{outcome=done}"] == 11
    assert got["ingestd_files_total{outcome=redone}"] == 1
    assert got["ingestd_files_total{outcome=failed}"] == 1
    assert got["ingestd_files_failed"] == 1 and got["ingestd_files_pending"] == 0
    assert got["ingestd_workers_alive"] == 0 and got["ingestd_paused"] == 0
    assert got["ingestd_ledger_files"] == 13
    last = max(r["finished_at"] for r in manifest if r["status"] == "done")
    from datetime import datetime

    assert got["ingestd_last_done_timestamp_seconds"] == datetime.fromisoformat(last).timestamp()


def test_a_taken_port_is_one_line_and_exit_2(data: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "ingestd", str(data), "--metrics-listen", f"127.0.0.1:{port}",
             "--log-format", "json"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "--metrics-listen" in run.stderr and "Traceback" not in run.stderr
    bad = subprocess.run([sys.executable, "-m", "ingestd", str(data), "--metrics-listen", "9464x"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert bad.returncode == 2 and "HOST:PORT" in bad.stderr


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_the_port_serves_metrics_and_the_probes_and_nothing_else(data: Path, spawn) -> None:
    port = _free_port()
    w = spawn(data, "--metrics-listen", f"127.0.0.1:{port}", "--heartbeat-interval", "0.2")
    wait_for(lambda: w.events("ready"), what="ready")
    base = f"http://127.0.0.1:{port}"
    status, body = _get(base + "/metrics")
    assert status == 200 and "ingestd_build_info" in body
    assert _get(base + "/healthz")[0] == 200
    assert wait_for(lambda: _get(base + "/readyz")[0] == 200, what="ready on /readyz")
    for other in ("/", "/metrics/x", "/favicon.ico", "/healthz/"):
        assert _get(base + other)[0] == 404, other
    # Paused: alive, not ready; the same verdicts as `ingestd health [--ready]`.
    subprocess.run([sys.executable, "-m", "ingestd", "pause", str(data)], check=True)
    wait_for(lambda: _get(base + "/readyz")[0] == 503, what="not ready while paused")
    assert "paused" in _get(base + "/readyz")[1]
    assert _get(base + "/healthz")[0] == 200
    assert w.terminate() == 0
