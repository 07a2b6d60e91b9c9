"""`ingestd timeline`: draw a `Timeline` with matplotlib, as PNG or SVG.

Two panels on one time axis: above, which worker ran which file when (one lane per worker);
below, the ideal FIFO schedule of the same arrivals; arrivals as ticks under both, makespans
marked. Files are not labelled one by one (96 labels would overlap): adjacent bars are told
apart by a white edge and by alternating shades, the names of the first and last are given.
Needs the `plot` extra; imported only by `ingestd timeline`.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ingestd.commands.schedule import Bar, Timeline
from ingestd.contracts.ledger import FAILED

FAILED_COLOR = "#d62728"
IDEAL_COLORS = ("#4d4d4d", "#b3b3b3")  # the ideal's machines: greys no worker lane uses
FORMATS = (".png", ".svg")


def _lanes(
    ax: Axes, bars: list[Bar], names: list[str], title: str, makespan: float, ideal: bool
) -> None:
    """One lane per name; bars drawn in one `broken_barh` call per lane and look (a call per
    bar took minutes at 100,000 files)."""
    palette = list(matplotlib.colormaps["tab10"](range(10)))
    groups: dict[tuple[int, str, bool, int], list[tuple[float, float]]] = defaultdict(list)
    previous: dict[int, int] = {}
    for bar in sorted(bars, key=lambda b: (b.lane, b.start)):
        shade = previous[bar.lane] = 1 - previous.get(bar.lane, 1)  # neighbours alternate
        groups[(bar.lane, bar.status, bar.redone, shade)].append(
            (bar.start, max(bar.end - bar.start, 1e-9))
        )
    for (lane, status, redone, shade), spans in groups.items():
        if status == FAILED:
            color = FAILED_COLOR
        elif ideal:
            color = IDEAL_COLORS[lane % len(IDEAL_COLORS)]
        else:
            color = palette[lane % len(palette)]
        ax.broken_barh(
            spans,
            (lane - 0.38, 0.76),
            facecolors=color,
            alpha=0.95 if shade else 0.7,
            edgecolor="white",
            linewidth=0.6 if len(spans) < 2000 else 0,
            hatch="///" if redone else None,
        )
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.4, -0.9)  # first lane on top; room for the arrival ticks
    arrivals = sorted(bar.arrival for bar in bars)
    ax.plot(arrivals, [-0.65] * len(arrivals), "|", color="black", markersize=6)
    ax.axvline(makespan + min(arrivals, default=0.0), color="black", linestyle="--", lw=1)
    ax.set_title(title, loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)


def draw(timeline: Timeline, path: Path, source: str = "") -> None:
    """Write the picture to `path` (.png or .svg)."""
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"{path}: give a .png or .svg file name")
    figure = render(timeline, source)
    try:
        figure.savefig(path, dpi=110)
    finally:
        plt.close(figure)


def close(figure: Figure) -> None:
    plt.close(figure)


def render(timeline: Timeline, source: str = "") -> Figure:
    """The picture as a matplotlib figure (the caller closes it)."""
    actual, ideal = timeline.actual, timeline.ideal
    lanes = max(len(timeline.lanes), timeline.machine_count, 1)
    figure, axes = plt.subplots(
        2, 1, sharex=True, figsize=(13, 2.2 + 1.1 * lanes), constrained_layout=True
    )
    try:
        if not actual:
            for ax in axes:
                ax.set_axis_off()
            axes[0].text(0.5, 0.5, f"no finished files yet in {source}", ha="center",
                         transform=axes[0].transAxes)  # fmt: skip
        else:
            span, best = Timeline.makespan(actual), Timeline.makespan(ideal)
            mean, best_mean = Timeline.mean_latency(actual), Timeline.mean_latency(ideal)
            unit = timeline.unit
            _lanes(axes[0], actual, timeline.lanes,
                   f"this run: {len(actual)} files, makespan {span:.1f} {unit}, "
                   f"mean arrival-to-done {mean:.2f} {unit}", span, ideal=False)  # fmt: skip
            machines = [f"machine {i + 1}" for i in range(timeline.machine_count)]
            _lanes(axes[1], ideal, machines,
                   f"ideal FIFO on {len(machines)}: makespan {best:.1f} {unit} "
                   f"({span / max(best, 1e-9):.3f}x), mean arrival-to-done {best_mean:.2f} "
                   f"{unit}", best, ideal=True)  # fmt: skip
            first = min(actual, key=lambda b: b.arrival).file
            last = max(actual, key=lambda b: b.arrival).file
            start = timeline.origin.isoformat(timespec="seconds") if timeline.origin else "?"
            if timeline.seconds_per_minute is not None:
                since = (f"simulated minutes since the first arrival ({start}; one simulated "
                         f"minute = {timeline.seconds_per_minute:g} s)")  # fmt: skip
            else:
                since = f"seconds since the first arrival ({start})"
            axes[1].set_xlabel(f"{since}; files {first} .. {last}")
            legend = [
                Patch(facecolor="grey", label="a file being processed (its worker's colour)"),
                Patch(
                    facecolor="grey",
                    alpha=0.6,
                    label="lighter, darker: neighbouring files",
                ),
                Patch(
                    facecolor="white",
                    edgecolor="black",
                    hatch="///",
                    label="done after a takeover or crash",
                ),
                Patch(facecolor=FAILED_COLOR, label="failed"),
                Line2D([], [], color="black", marker="|", linestyle="none", label="arrival"),
                Line2D([], [], color="black", linestyle="--", label="makespan"),
            ]
            axes[0].legend(handles=legend, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                           fontsize=8, frameon=False)  # fmt: skip
        figure.suptitle(f"ingestd timeline: {source}", fontsize=11, x=0.01, ha="left")
    except BaseException:
        plt.close(figure)
        raise
    return figure
