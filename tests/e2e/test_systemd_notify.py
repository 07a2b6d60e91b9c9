"""sd_notify from a real daemon to a real AF_UNIX datagram socket; the unit file verified by
systemd-analyze."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

UNIT = ROOT / "systemd" / "ingestd@.service"


def test_daemon_notifies_ready_status_watchdog_stopping_in_order(tmp_path: Path) -> None:
    address = tmp_path / "notify.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(address))
    server.settimeout(10)
    data = tmp_path / "drop"
    data.mkdir()
    (data / "2018_06_28_00_00.txt").write_text("1")
    env = {**os.environ, "NOTIFY_SOCKET": str(address), "WATCHDOG_USEC": "100000"}
    env.pop("WATCHDOG_PID", None)
    log = open(tmp_path / "w.log", "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "ingestd", str(data), "--seconds-in-min", "0",
         "--rescan-interval", "0.1", "--settle", "0", "--log-format", "json"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    messages: list[str] = []
    try:
        messages.append(server.recv(4096).decode())
        deadline = time.monotonic() + 0.6
        while time.monotonic() < deadline:
            messages.append(server.recv(4096).decode())
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        server.settimeout(0.5)
        while True:
            try:
                messages.append(server.recv(4096).decode())
            except TimeoutError:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        server.close()
        log.close()
    kinds = [m.split("=", 1)[0] for m in messages]
    assert messages[0].startswith("READY=1\nSTATUS=")
    assert kinds.count("WATCHDOG") >= 3  # every 0.05 s: a loose floor, not a timing check
    assert any(m.startswith("STATUS=") and "1 done" in m for m in messages)
    assert "STOPPING" in kinds
    assert kinds.index("STOPPING") > max(i for i, k in enumerate(kinds) if k == "READY")


def _instance(tmp_path: Path) -> tuple[str, Path]:
    """systemd-analyze, and an instance for /mnt/drop whose ExecStart is this checkout's entry
    point (so the "executable exists" check means something)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze missing in CI: .ci/run installs the systemd package")
        pytest.skip("systemd-analyze not installed")
    entry = Path(sys.executable).with_name("ingestd")
    instance = tmp_path / "ingestd@mnt-drop.service"
    instance.write_text(UNIT.read_text().replace("/usr/local/bin/ingestd", str(entry)))
    return analyze, instance


def _verify(analyze: str, instance: Path) -> str:
    """What `systemd-analyze verify` says: it exits 0 on unknown keys, so output is failure."""
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(instance)], capture_output=True, text=True
    )
    return result.stdout + result.stderr + ("" if result.returncode == 0 else "(failed)")


def test_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze, instance = _instance(tmp_path)
    assert _verify(analyze, instance) == ""
    # And the check does catch a mistake.
    instance.write_text(
        UNIT.read_text().replace("Restart=on-failure", "Restart=on-failure\nBogusKey=1")
    )
    assert "BogusKey" in _verify(analyze, instance)


def _verify_drop_in(tmp_path: Path, name: str) -> list[str]:
    """systemd-analyze verify of the unit with systemd/ingestd-NAME.conf; the drop-in's lines."""
    analyze, instance = _instance(tmp_path)
    drop_ins = tmp_path / "ingestd@.service.d"
    drop_ins.mkdir()
    drop_in = UNIT.with_name(f"ingestd-{name}.conf")
    (drop_ins / f"{name}.conf").write_text(drop_in.read_text())
    assert _verify(analyze, instance) == ""
    # It is read: a broken drop-in is reported.
    (drop_ins / f"{name}.conf").write_text(drop_in.read_text() + "BogusKey=1\n")
    assert "BogusKey" in _verify(analyze, instance)
    return drop_in.read_text().splitlines()


def test_the_postgresql_drop_in_passes_verify_and_opens_tcp(tmp_path: Path) -> None:
    lines = _verify_drop_in(tmp_path, "postgresql")
    assert "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6" in lines
    assert "After=network-online.target postgresql.service" in lines


def test_the_metrics_drop_in_passes_verify_and_writes_where_it_may(tmp_path: Path) -> None:
    lines = _verify_drop_in(tmp_path, "metrics")
    writable = next(x for x in lines if x.startswith("ReadWritePaths="))
    target = next(x for x in lines if x.startswith("Environment=INGESTD_METRICS_TEXTFILE="))
    # The file the worker writes lies in the one extra directory it may write.
    assert target.split("=", 2)[2].startswith(writable.split("=", 1)[1] + "/")
