"""Claim locks between real processes: a holder that dies releases its claim, a live one
keeps it."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from builders import owner

from ingestd.ledgers.file import claim as claims

RACER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ingestd.ledgers.file import claim as claims

    locks, count, out = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    mine = []
    for i in range(count):
        name = f"2018_06_28_{i // 60:02d}_{i % 60:02d}.txt"
        try:
            held = claims.try_claim(locks, name)
        except claims.Busy:
            continue
        # Done-check (a stand-in for the manifest): the winner leaves a marker before release.
        marker = locks.parent / "done" / name
        if not marker.exists():
            marker.write_text(sys.argv[4])
            mine.append(name)
        held.finish()
    Path(out).write_text("\\n".join(mine))
    """
)


def test_two_processes_racing_for_200_files_claim_each_once(locks: Path, tmp_path: Path) -> None:
    (tmp_path / "done").mkdir()
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(locks), "200", str(tmp_path / f"out{i}"), str(i)]
        )
        for i in range(2)
    ]
    for p in procs:
        assert p.wait(timeout=60) == 0
    claimed = [
        name for i in range(2) for name in (tmp_path / f"out{i}").read_text().split("\n") if name
    ]
    assert len(claimed) == 200
    assert len(set(claimed)) == 200
    assert list(locks.iterdir()) == []


def test_claim_of_a_killed_process_is_taken_over(locks: Path, tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from ingestd.ledgers.file import claim as c;"
            "from ingestd.contracts.ledger import Owner;"
            "h = c.try_claim(Path(sys.argv[1]), 'a.txt'); h.begin(Owner('doomed', 'h', 1, ''));"
            "print('held', flush=True); time.sleep(60)",
            str(locks),
        ],
        stdout=subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == b"held"
    with pytest.raises(claims.Busy):
        claims.try_claim(locks, "a.txt")
    holder.kill()
    holder.wait()
    holder.stdout.close()
    taken = claims.try_claim(locks, "a.txt")
    assert taken.previous_owner is not None and taken.previous_owner.worker == "doomed"
    assert taken.begin(owner("heir")) == 2
    taken.finish()
