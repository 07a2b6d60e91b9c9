"""Two "hosts" on one kernel: each worker in its own UTS and PID namespace, so both are PID 1
on hosts of different names, sharing one directory (what two NFS clients look like, minus NFS).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from conftest import manifest_records, wait_for


def namespaces_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--uts", "--pid", "--fork", "--mount", "--mount-proc", "true"],
        capture_output=True,
    )
    return probe.returncode == 0


def _ready(log: Path, proc: subprocess.Popen[bytes]) -> bool:
    text = log.read_text()
    if proc.poll() is not None:
        raise AssertionError(f"worker exited with {proc.returncode} before ready:\n{text}")
    return '"event": "ready"' in text


@pytest.mark.skipif(not namespaces_available(), reason="needs root for unshare(1)")
def test_two_hosts_with_the_same_pid_share_the_work(tmp_path: Path, provider) -> None:
    data = tmp_path / "drop"
    data.mkdir()
    procs = []
    for host in ("host-a", "host-b"):
        log = open(tmp_path / f"{host}.log", "wb")  # noqa: SIM115 - closed below
        command = (
            # socket.sethostname rather than hostname(1), which minimal systems lack.
            f"{sys.executable} -c 'import socket, sys; socket.sethostname(sys.argv[1])' {host} && "
            f"exec {sys.executable} -m ingestd {data} --log-format json "
            "--seconds-in-min 0.001 --rescan-interval 0.2 --settle 0.2"
        )
        procs.append((subprocess.Popen(
            ["unshare", "--uts", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc",
             "sh", "-c", command],
            stdout=log, stderr=subprocess.STDOUT,
        ), log))  # fmt: skip
    try:
        # Both on line before the provider starts: files come faster than one can do them.
        for host, (proc, _) in zip(("host-a", "host-b"), procs, strict=True):
            wait_for(lambda h=host, p=proc: _ready(tmp_path / f"{h}.log", p), what=f"{host} ready")
        sim = provider(data, "--files", "40", "--seconds-in-min", "0.001", "--seed", "9")
        assert sim.wait(timeout=60) == 0
        wait_for(lambda: len(manifest_records(data)) == 40, timeout=60, what="40 records")
    finally:
        for proc, log in procs:
            proc.kill()
            proc.wait(timeout=10)
            log.close()
    records = manifest_records(data)
    assert Counter(r["file"] for r in records).most_common(1)[0][1] == 1
    hosts = Counter((r["host"], r["worker"], r["pid"]) for r in records)
    assert {key[:2] for key in hosts} == {("host-a", "host-a:1"), ("host-b", "host-b:1")}
    assert {key[2] for key in hosts} == {1}  # same PID, told apart by host
