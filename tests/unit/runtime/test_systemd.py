"""sd_notify messages (pure) and the unit file's settings, as written."""

from __future__ import annotations

import os
import socket

import pytest
from conftest import ROOT

from ingestd.runtime.systemd import Notifier, watchdog_interval

UNIT = ROOT / "systemd" / "ingestd@.service"


def test_notifier_is_a_no_op_without_a_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier()
    assert not notifier.enabled
    assert not notifier.notify("READY=1")
    notifier.close()


def test_abstract_socket_names(monkeypatch: pytest.MonkeyPatch) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    name = f"ingestd-test-{os.getpid()}"
    server.bind("\0" + name)
    try:
        notifier = Notifier("@" + name)
        assert notifier.notify("READY=1", "STATUS=ok")
        assert server.recv(100) == b"READY=1\nSTATUS=ok"
        notifier.close()
    finally:
        server.close()


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert watchdog_interval() is None


def test_unit_has_the_required_settings() -> None:
    text = UNIT.read_text()
    for line in (
        "Type=notify", "NotifyAccess=main", "Restart=on-failure", "RequiresMountsFor=%f",
        "After=network-online.target remote-fs.target", "ProtectSystem=strict",
        "ReadWritePaths=%f", "NoNewPrivileges=yes", "PrivateTmp=yes", "ProtectHome=yes",
        "RestrictAddressFamilies=AF_UNIX", "EnvironmentFile=-/etc/default/ingestd", "User=ingestd",
        # Exit 2 is a configuration error: restarting cannot fix it.
        "RestartPreventExitStatus=2",
        # Per-instance settings beside the shared file, read after it (so they win).
        "EnvironmentFile=-/etc/default/ingestd-%i",
    ):  # fmt: skip
        assert line in text.splitlines(), line
    assert any(x.startswith("WatchdogSec=") for x in text.splitlines())


def test_per_instance_settings_come_after_the_shared_ones() -> None:
    lines = UNIT.read_text().splitlines()
    shared = lines.index("EnvironmentFile=-/etc/default/ingestd")
    assert lines.index("EnvironmentFile=-/etc/default/ingestd-%i") == shared + 1
