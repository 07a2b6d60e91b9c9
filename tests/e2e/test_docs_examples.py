"""The examples of the docs' Getting started page, run as they are written: the page includes
these very scripts (docs/examples/), so what a reader copies is what passed here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

EXAMPLES = ROOT / "docs" / "examples"


def run(script: str, tmp_path: Path, *bins: Path, **env: str) -> subprocess.CompletedProcess[str]:
    # `ingestd` and `python` (and `psql`) as a reader who installed them has them.
    path = os.pathsep.join([str(Path(sys.executable).parent), *map(str, bins),
                            os.environ["PATH"]])  # fmt: skip
    return subprocess.run(
        ["bash", "-euo", "pipefail", str(EXAMPLES / script)],
        env={**os.environ, "PATH": path, "WORK": str(tmp_path), **env},
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def test_two_workers_on_a_directory(tmp_path: Path) -> None:
    out = run("two-workers.sh", tmp_path)
    assert out.returncode == 0, out.stderr
    assert "done 4, failed 0" in out.stdout and "OK" in out.stdout


def test_through_postgresql(tmp_path: Path, pg) -> None:
    out = run("postgres-ledger.sh", tmp_path, DATABASE_URL=pg.url)
    assert out.returncode == 0, out.stderr
    assert "done 4, failed 0" in out.stdout and out.stdout.rstrip().endswith("OK")


def test_from_a_bucket_into_a_table(tmp_path: Path, pg, s3_server) -> None:
    out = run("bucket.sh", tmp_path, pg.cluster.bindir, DATABASE_URL=pg.url)
    assert out.returncode == 0, out.stderr
    assert "done 4, failed 0" in out.stdout
    assert out.stdout.rstrip().splitlines()[-1] == "8"
