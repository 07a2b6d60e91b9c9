"""The handler registry and API: loading, user handlers sync and async, outcomes, declared options;
the simulate handler."""

import asyncio
import math
import os
import sys
from pathlib import Path

import pytest

from ingestd.contracts.errors import BadInput
from ingestd.handlers import HandlerError, Job, Outcome, choose, load_handler, to_outcome
from ingestd.handlers.simulate import Options as SimulateOptions
from ingestd.handlers.simulate import handle as simulate
from ingestd.handlers.simulate import parse_minutes
from ingestd.runtime.settings import Settings
from ingestd.sources.local import LocalSource, read_capped


@pytest.mark.parametrize(
    ("content", "minutes"),
    [
        (b"22.5050828", 22.5050828),
        (b"  7\n", 7.0),
        (b"0", 0.0),
        (b"1440", 1440.0),
        (b"1e1", 10.0),
        (b".5", 0.5),
        (b"+3.", 3.0),
        (b"\xef\xbb\xbf12.5\r\n", 12.5),  # a UTF-8 byte order mark is skipped
    ],
)
def test_valid_minutes(content: bytes, minutes: float) -> None:
    assert math.isclose(parse_minutes(content, 1440), minutes)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"twelve", "not a number"),
        (b"nan", "finite"),
        (b"inf", "finite"),
        (b"-3", "negative"),
        (b"1441", "cap"),
        (b"\xff\xfe", "UTF-8"),
        (b"1" * 5000, "4096"),
        (b"1_000", "not a number"),  # float() takes these; no provider means them
        ("\u0665".encode(), "not a number"),  # Arabic-Indic five
        ("\uff15".encode(), "not a number"),  # fullwidth five
        (b"0x10", "not a number"),
        (b"1e999", "finite"),
    ],
)
def test_bad_input_says_why(content: bytes, reason: str) -> None:
    with pytest.raises(BadInput, match=reason):
        parse_minutes(content, 1440)


def test_read_capped_never_reads_past_the_cap(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"9" * 1_000_000)
    assert len(read_capped(big, 4096)) == 4097


def test_read_capped_refuses_fifos_and_symlinks(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(BadInput):
        read_capped(fifo, 10)  # returns at once: O_NONBLOCK, never waits for a writer
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "big")
    with pytest.raises(OSError):
        read_capped(link, 10)


async def test_simulate_sleeps_scaled_minutes(tmp_path: Path) -> None:
    path = tmp_path / "2018_06_28_00_00.txt"
    path.write_text("3\n")
    head = read_capped(path, 4096)
    job = Job(path.name, None, SimulateOptions(seconds_in_min=0.0), None, head)  # type: ignore[arg-type]
    outcome = await simulate(job)
    assert outcome.minutes == 3.0
    assert outcome.size == 2
    assert outcome.sha256 is not None and len(outcome.sha256) == 64


def test_to_outcome_accepts_numbers_dicts_and_outcomes() -> None:
    assert to_outcome(2).minutes == 2.0
    assert to_outcome({"minutes": 1.5, "records": 3}).records == 3
    assert to_outcome(Outcome(minutes=4)).minutes == 4
    with pytest.raises(TypeError):
        to_outcome("nope")
    with pytest.raises(TypeError):
        to_outcome(True)


def test_load_handler_errors_are_clear() -> None:
    assert load_handler("simulate") is simulate
    for spec in ("nonsense", "no_such_module_xyz:run", "os:no_such_callable"):
        with pytest.raises(HandlerError):
            load_handler(spec)


async def test_user_handlers_sync_and_async(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "myhandlers.py").write_text(
        "import asyncio, threading\n"
        "def sync(job):\n"
        "    return {'minutes': 1.0, 'outputs': [threading.current_thread().name]}\n"
        "async def aio(job):\n"
        "    await asyncio.sleep(0)\n"
        "    return 2\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    job = Job("x", None, None, None, b"", LocalSource(tmp_path))  # type: ignore[arg-type]
    sync_outcome = await load_handler("myhandlers:sync")(job)
    assert sync_outcome.minutes == 1.0 and sync_outcome.outputs != ["MainThread"]  # a thread
    assert (await load_handler("myhandlers:aio")(job)).minutes == 2.0
    sys.modules.pop("myhandlers", None)
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    "fields",
    [
        {"minutes": float("nan")},
        {"minutes": float("inf")},
        {"minutes": -0.5},
        {"minutes": True},
        {"minutes": 1.0, "records": -1},
        {"minutes": 1.0, "size": 1.5},
    ],
)
def test_outcome_refuses_what_is_not_a_real_result(fields: dict) -> None:
    with pytest.raises(ValueError, match="Outcome"):
        Outcome(**fields)


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(source=str(tmp_path), source_id=str(tmp_path), state_dir=tmp_path / ".s",
                    worker_id="w", host="h", **kw)  # type: ignore[arg-type]  # fmt: skip


def test_a_handler_sees_its_own_declared_options_not_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    chosen = choose("simulate", _settings(tmp_path, seconds_in_min=0.5, max_minutes=9.0))
    assert chosen.options == SimulateOptions(seconds_in_min=0.5, max_minutes=9.0)
    assert chosen.prepare is None and chosen.watermarks is None
    (tmp_path / "declared.py").write_text(
        "from dataclasses import dataclass\n"
        "@dataclass(frozen=True)\n"
        "class Mine:\n"
        "    columns: tuple[str, ...] | None\n"
        "    worker_id: str\n"
        "OPTIONS = Mine\n"
        "def handle(job):\n"
        "    return 0\n"
        "class Wrong:\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = choose("declared:handle", _settings(tmp_path, columns=("a", "b")))
    assert (mine.options.columns, mine.options.worker_id) == (("a", "b"), "w")
    assert choose("os.path:join", _settings(tmp_path)).options is None  # declares nothing
    (tmp_path / "typo.py").write_text(
        "from dataclasses import dataclass\n"
        "@dataclass\n"
        "class O:\n"
        "    colums: str\n"
        "OPTIONS = O\n"
        "def handle(job):\n"
        "    return 0\n"
    )
    with pytest.raises(HandlerError, match="colums"):
        choose("typo:handle", _settings(tmp_path))
