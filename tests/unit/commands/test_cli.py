"""Command line, in-process: options, INGESTD_* defaults, settings from the source's and the
ledger's kinds."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from ingestd.commands import cli
from ingestd.ledgers.file import statedir


def test_env_defaults_and_flags_build_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("INGESTD_SETTLE", "0.25")
    monkeypatch.setenv("INGESTD_CONCURRENCY", "3")
    monkeypatch.setenv("INGESTD_WATCH", "no")
    args = cli.build_parser().parse_args(["run", str(tmp_path), "--concurrency", "2"])
    settings = cli.settings_from(args)
    assert settings.settle == 0.25  # from the environment
    assert settings.concurrency == 2  # the command line wins
    assert settings.watch is False
    assert settings.state_dir == tmp_path / ".ingestd"
    assert settings.worker_id.endswith(":" + str(__import__("os").getpid()))


@pytest.mark.parametrize(
    "argv",
    [
        ["{d}", "--seconds-in-min", "-1"],
        ["{d}", "--seconds-in-min", "inf"],
        ["{d}", "--rescan-interval", "0"],
        ["{d}", "--max-attempts", "1.5"],
        ["{d}", "--worker-id", "a/b"],
        ["{d}", "--columns", "a,,b"],
        ["{d}", "--handler", "no.such.module:handle"],
        ["status"],
        [],
    ],
)
def test_mistakes_are_one_line_and_exit_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main([a.format(d=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("ingestd: error: ") and err.count("\n") == 1, err


def test_an_unsafe_nfs_mount_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The mountinfo parser is tested on recorded lines (test_mounts.py); here, its verdict
    # must stop the daemon before any work, with one line and exit 2.
    reason = "/mnt/drop is mounted from files:/export with local_lock=flock: remount without it"
    monkeypatch.setattr(statedir, "check_state_dir", lambda path: reason)
    (tmp_path / "2018_06_28_00_00.txt").write_text("1")
    code = cli.main([str(tmp_path), "--log-format", "json", "--seconds-in-min", "0"])
    captured = capsys.readouterr()
    assert code == 2
    assert "refusing state dir" in captured.err and "local_lock=flock" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert not (tmp_path / ".ingestd" / "manifest.jsonl").exists()  # nothing was processed


def test_an_empty_variable_means_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INGESTD_SETTLE", "")
    monkeypatch.setenv("INGESTD_STATE_DIR", "")
    settings = cli.settings_from(cli.build_parser().parse_args(["run", str(tmp_path)]))
    assert settings.settle == 1.0 and settings.state_dir == tmp_path / ".ingestd"


def _commands() -> list[str]:
    parser = cli.build_parser()
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(found[0].choices)


@pytest.mark.parametrize("command", _commands())
def test_every_command_prints_its_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    # A help text is formatted by argparse (%-expansion): one bad character is a traceback.
    with pytest.raises(SystemExit) as exit_:
        cli.build_parser().parse_args([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: ")
    assert len(out.splitlines()) > 2


def test_run_help_shows_a_literal_percent(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--help"])
    assert "reject[:N|:P%]" in capsys.readouterr().out
