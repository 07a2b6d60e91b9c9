"""`ingestd timeline`: draw who processed which file when, beside the ideal FIFO schedule of
the same arrivals and durations (`schedule.py` computes both, `plot.py` draws them)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from ingestd.commands import reading, target
from ingestd.commands.arguments import Command, add_dir, duration, moment
from ingestd.commands.schedule import build


def arguments(parser: argparse.ArgumentParser) -> None:
    add_dir(parser)
    parser.add_argument("--output", "-o", type=Path, required=True, metavar="FILE",
                        help="the picture: a .png or .svg file")  # fmt: skip
    parser.add_argument(
        "--machines", type=int, metavar="N", help="machines in the ideal schedule (its workers)"
    )
    window = parser.add_mutually_exclusive_group()
    window.add_argument(
        "--since",
        type=moment,
        metavar="TIME",
        help="only files finished at or after TIME (ISO 8601, UTC if no zone)",
    )
    window.add_argument(
        "--last",
        type=duration,
        metavar="SPAN",
        help="only files finished in the last SPAN (e.g. 90m, 6h, 2d)",
    )


def cmd_timeline(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() not in (".png", ".svg"):
        print(f"ingestd: error: {args.output}: give a .png or .svg file name", file=sys.stderr)
        return 2
    if args.machines is not None and args.machines < 1:
        print("ingestd: error: --machines must be >= 1", file=sys.stderr)
        return 2
    try:
        from ingestd.commands import plot
    except ImportError:
        raise OSError("timeline needs: pip install 'ingestd[plot]'") from None
    since = args.since
    if args.last is not None:
        since = datetime.now(UTC) - args.last
    _, inspector = target.view(args)
    progress = reading.Progress("reading records")
    drawn = build(progress.counted(inspector.records()), args.machines, since)
    progress.say(f"drawing {len(drawn.actual)} files")
    plot.draw(drawn, args.output, str(args.dir))
    progress.done()
    actual, ideal = drawn.actual, drawn.ideal
    if actual:
        span, best = drawn.makespan(actual), drawn.makespan(ideal)
        unit = drawn.unit
        ratio = f" ({span / best:.3f}x)" if best > 0 else ""
        print(f"{args.output}: {len(actual)} files on {len(drawn.lanes)} workers; makespan "
              f"{span:.1f} {unit}, ideal FIFO {best:.1f} {unit}{ratio}")  # fmt: skip
    else:
        print(f"{args.output}: no finished files" + (" in that time" if since else " yet"))
    return 0


COMMAND = Command("timeline", "draw who processed which file when, beside the ideal schedule",
                  arguments, cmd_timeline)  # fmt: skip
