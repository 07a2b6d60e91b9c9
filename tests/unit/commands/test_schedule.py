"""`ingestd timeline`: the schedule from records (pure) and the picture (real matplotlib)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from builders import day, rec

from ingestd.commands.plot import draw
from ingestd.commands.schedule import Bar, Timeline, final_runs, ideal_fifo
from ingestd.commands.schedule import build as build_from
from ingestd.contracts.ledger import Stored

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def stored(records: list[dict[str, Any]]) -> list[Stored]:
    return [s for s in map(Stored.from_dict, records) if s is not None]


def build(records: list[dict[str, Any]], *args: Any, **kw: Any) -> Timeline:
    return build_from(stored(records), *args, **kw)


def test_ideal_fifo_starts_each_file_on_the_first_machine_free() -> None:
    bars = [Bar("a", 0, 0, 10, 0), Bar("b", 0, 10, 15, 1), Bar("c", 0, 15, 17, 2)]
    ideal = ideal_fifo(bars, 2)
    assert [(b.file, b.lane, b.start, b.end) for b in ideal] == [
        ("a", 0, 0, 10), ("b", 1, 1, 6), ("c", 1, 6, 8)
    ]  # fmt: skip
    assert Timeline.makespan(ideal) == 10 and Timeline.makespan(bars) == 17


def test_the_standing_record_is_the_first_done_else_the_last_failed() -> None:
    records = [
        rec("x", "a", 0, 0, 1, status="failed"),
        {"file": "x", "status": "retry"},
        rec("x", "b", 0, 2, 3),
        rec("x", "c", 0, 4, 5),  # a duplicate (verify reports it): the first done stands
        rec("y", "a", 0, 0, 1, status="failed"),
    ]
    assert [(r.file, r.worker) for r in final_runs(stored(records))] == [("x", "b"), ("y", "a")]


def test_a_takeover_is_drawn_as_redone_on_the_workers_that_ran_it() -> None:
    records = [rec("f1", "a", 0, 0, 5), rec("f2", "b", 1, 1, 9, attempt=2), rec("f3", "a", 2, 5, 6)]
    timeline = build(records)
    assert timeline.lanes == ["a", "b"]
    assert [(b.file, b.lane, b.redone) for b in timeline.actual] == [
        ("f1", 0, False), ("f2", 1, True), ("f3", 0, False)
    ]  # fmt: skip
    assert timeline.mean_latency(timeline.actual) == (5 + 8 + 4) / 3
    assert build([{"file": "f", "status": "done"}]).actual == []  # no times: nothing drawn


@pytest.mark.parametrize("files", [0, 1, 96])
@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_the_picture_renders_for_none_one_and_a_whole_day(
    tmp_path: Path, files: int, suffix: str
) -> None:
    path = tmp_path / f"t{suffix}"
    draw(build(day(files)), path, "drop")
    head = path.read_bytes()[:200]
    assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<svg" in path.read_bytes()


def test_lanes_are_in_name_order() -> None:
    records = [rec("f1", "w-b", 0, 0, 5), rec("f2", "w-a", 1, 1, 3), rec("f3", "w-c", 2, 2, 4)]
    timeline = build(records)
    assert timeline.lanes == ["w-a", "w-b", "w-c"]
    assert [(b.file, timeline.lanes[b.lane]) for b in timeline.actual] == [
        ("f1", "w-b"), ("f2", "w-a"), ("f3", "w-c")
    ]  # fmt: skip


def test_a_simulation_is_drawn_in_simulated_minutes() -> None:
    # --seconds-in-min 0.01: 12 simulated minutes took 0.12 s, 30 took 0.30 s.
    records = [rec("f1", "a", 0, 0, 0.12, minutes=12), rec("f2", "a", 0.1, 0.12, 0.42, minutes=30)]
    timeline = build(records)
    assert timeline.seconds_per_minute == 0.01 and timeline.unit == "simulated min"
    assert [b.end - b.start for b in timeline.actual] == pytest.approx([12, 30], abs=1e-3)
    # Durations that do not follow their minutes (a real handler): plain seconds.
    real = build([rec("f1", "a", 0, 0, 5, minutes=12), rec("f2", "a", 0, 5, 6, minutes=30)])
    assert real.seconds_per_minute is None and real.unit == "s"


def test_since_keeps_the_files_finished_from_then() -> None:
    records = [rec(f"f{i}", "a", i, i, i + 1) for i in range(10)]
    timeline = build(records, since=T0 + timedelta(seconds=5))
    assert [b.file for b in timeline.actual] == ["f4", "f5", "f6", "f7", "f8", "f9"]


def test_the_ideal_panel_never_uses_a_workers_colour() -> None:
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    from ingestd.commands.plot import render

    timeline = build([rec(f"f{i}", "ab"[i % 2], i, i, i + 3) for i in range(12)])
    figure = render(timeline, "x")
    try:
        actual_ax, ideal_ax = figure.axes[0], figure.axes[1]

        def colours(ax: Any) -> set[str]:
            return {to_hex(c) for coll in ax.collections for c in coll.get_facecolor()}

        workers = {to_hex(c) for c in colormaps["tab10"](range(10))}
        assert colours(actual_ax) & workers
        assert not colours(ideal_ax) & workers
        labels = [t.get_text() for t in actual_ax.get_legend().get_texts()]
        assert any("neighbouring files" in label for label in labels)  # the shades explained
    finally:
        import matplotlib.pyplot as plt

        plt.close(figure)
