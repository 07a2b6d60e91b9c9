"""The command line against real processes: `python -m ingestd`, the `ingestd` script, exit codes
and one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            script: bool = False) -> subprocess.CompletedProcess[str]:  # fmt: skip
    command = [str(Path(sys.executable).parent / "ingestd")] if script else [
        sys.executable, "-m", "ingestd"
    ]  # fmt: skip
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=30, cwd=cwd,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_a_bad_run_only_variable_does_not_break_other_commands(data: Path) -> None:
    env = {"INGESTD_SETTLE": "soon"}
    assert run_cli("--version", env=env).returncode == 0
    assert run_cli("status", str(data), env=env).returncode == 0
    assert run_cli("pause", str(data), env=env).returncode in (0, 2)  # no state dir yet: 2
    assert "no state dir" in run_cli("pause", str(data), env=env).stderr
    result = run_cli("run", str(data), env=env)
    assert result.returncode == 2 and "INGESTD_SETTLE" in result.stderr


def test_a_misspelled_variable_is_warned_about(data: Path) -> None:
    result = run_cli("status", str(data), env={"INGESTD_SETLE": "2"})
    assert "INGESTD_SETLE is not an ingestd variable" in result.stderr
    assert "did you mean INGESTD_SETTLE?" in result.stderr


@pytest.mark.parametrize(("word", "hint"), [("stauts", "did you mean 'status'?"), ("bogus", "")])
def test_an_unknown_command_is_named(tmp_path: Path, word: str, hint: str) -> None:
    result = run_cli(word, "D", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"ingestd: error: unknown command '{word}'")
    assert hint in result.stderr and f"ingestd run {word}" in result.stderr
    assert not (tmp_path / word).exists()


def test_a_handler_in_the_current_directory_imports_from_the_script_too(data: Path) -> None:
    cwd = data.parent
    (cwd / "localhandler.py").write_text("def handle(job):\n    return 0.5\n")
    (data / "2018_06_28_00_00.txt").write_text("1")
    result = run_cli(str(data), "--handler", "localhandler:handle", "--exit-when-idle", "0.3",
                     "--log-format", "json", cwd=cwd, script=True)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert '"event": "file_done"' in result.stdout


def read_only_bind(path: Path) -> None:
    if subprocess.run(["mount", "--bind", str(path), str(path)]).returncode != 0:
        pytest.skip("needs root to make a read-only bind mount")
    subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)


@pytest.mark.parametrize("which", ["state", "output"])
def test_a_read_only_state_or_output_dir_is_refused_with_the_unit_hint(
    data: Path, tmp_path: Path, which: str
) -> None:
    elsewhere = tmp_path / which
    elsewhere.mkdir()
    read_only_bind(elsewhere)
    try:
        option = "--state-dir" if which == "state" else "--output-dir"
        result = run_cli(str(data), "--handler", "tsv", option, str(elsewhere))
    finally:
        subprocess.run(["umount", str(elsewhere)], check=True)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert line.startswith(f"ingestd: error: {which} dir {elsewhere} is not usable: Read-only")
    assert "ReadWritePaths=" in line and "\n" not in line
