#!/usr/bin/env python3
"""The provider: drop `YYYY_MM_DD_HH_MM.txt` files into DIR on schedule, like the real one.

Each file holds its processing time in minutes. The first file lands at once; every later one
at its timestamp's offset from the first, times --seconds-in-min (60: real time). Standard
library only, so a bare `python simulation.py DIR` works. DIR may be `s3://BUCKET[/PREFIX]`
(boto3 needed: `pip install 'ingestd[s3]'`; the server from AWS_ENDPOINT_URL or
--s3-endpoint-url; the bucket is made if missing): each file is one PUT.

Examples:
  python simulation.py /tmp/drop --seconds-in-min 0.01          # the appendix day in ~15 s
  python simulation.py /tmp/drop --seconds-in-min 0 --files 10000 --interval-minutes 15
  python simulation.py /tmp/drop --seconds-in-min 0.01 --lag-minutes 5 --slow-write --seed 7
  AWS_ENDPOINT_URL=http://127.0.0.1:9000 python simulation.py s3://drop/day --seconds-in-min 0.01
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

NAME_FORMAT = "%Y_%m_%d_%H_%M.txt"
APPENDIX = Path(__file__).resolve().parent / "data" / "appendix-2018-06-28.tsv"
BAD_CONTENTS = ("not a number", "nan", "-3", "", "inf", "12 minutes", "99999999")


class ScheduleError(Exception):
    pass


def read_schedule(path: Path) -> list[tuple[str, str]]:
    """(name, minutes as written) rows of a `filename<TAB>minutes` file; a header is allowed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ScheduleError(f"cannot read schedule {path}: {exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise ScheduleError(f"{path}:{number}: expected 'filename<TAB>minutes'")
        name, minutes = fields[0].strip(), fields[1].strip()
        if number == 1 and not _is_name(name):
            continue  # header line
        if not _is_name(name):
            raise ScheduleError(f"{path}:{number}: {name!r} is not a YYYY_MM_DD_HH_MM.txt name")
        rows.append((name, minutes))
    if not rows:
        raise ScheduleError(f"{path}: no rows")
    if len({name for name, _ in rows}) != len(rows):
        raise ScheduleError(f"{path}: a file name appears more than once")
    return rows


def _is_name(name: str) -> bool:
    try:
        return datetime.strptime(name, NAME_FORMAT).strftime(NAME_FORMAT) == name
    except ValueError:
        return False


def _stamp(name: str) -> datetime:
    return datetime.strptime(name, NAME_FORMAT)


def draw_minutes(spec: str, rng: random.Random) -> float:
    """One sample of `uniform:A:B`, `normal:MEAN:SD` (clipped at 0) or `const:X`."""
    kind, *params = spec.split(":")
    values = [float(p) for p in params]
    if kind == "uniform" and len(values) == 2:
        return rng.uniform(*values)
    if kind == "normal" and len(values) == 2:
        return max(0.0, rng.gauss(*values))
    if kind == "const" and len(values) == 1:
        return values[0]
    raise ValueError(spec)


def synthetic(
    count: int, interval: float, start: str, spec: str, seed: int
) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    first = _stamp(start + ".txt")
    rows = [
        (
            (first + timedelta(minutes=i * interval)).strftime(NAME_FORMAT),
            f"{draw_minutes(spec, rng):.7f}",
        )
        for i in range(count)
    ]
    if len({name for name, _ in rows}) != len(rows):
        # A fractional interval can still round two slots to one minute.
        raise ScheduleError(f"--interval-minutes {interval:g} gives several files the same name")
    return rows


def plan(
    rows: list[tuple[str, str]], lag_minutes: float, bad_files: int, seed: int
) -> list[tuple[float, str, str, bool]]:
    """(offset in simulated minutes, name, content, is_bad), in the order they will land."""
    rng = random.Random(seed)
    first = min(_stamp(name) for name, _ in rows)
    taken = {name for name, _ in rows}
    events = []
    for name, minutes in rows:
        offset = (_stamp(name) - first).total_seconds() / 60
        lag = rng.uniform(0, lag_minutes) if lag_minutes > 0 else 0.0
        events.append((offset + lag, name, minutes, False))
    span = max(offset for offset, *_ in events)
    for i in range(bad_files):
        # Off the 15-minute grid (7 minutes past a slot) so they never collide with real files.
        offset = (span * (i + 1) / (bad_files + 1)) // 15 * 15 + 7
        name = (first + timedelta(minutes=offset)).strftime(NAME_FORMAT)
        while name in taken:
            offset += 1
            name = (first + timedelta(minutes=offset)).strftime(NAME_FORMAT)
        taken.add(name)
        events.append((offset, name, BAD_CONTENTS[i % len(BAD_CONTENTS)], True))
    events.sort(key=lambda event: (event[0], event[1]))
    return events


def write_file(directory: Path, name: str, content: str, *, slow: bool, atomic: bool) -> None:
    data = content.encode()
    target = directory / name
    path = directory / f".{name}.tmp" if atomic else target
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        if slow:
            # Created first, then written in pieces: a reader that does not wait for the close
            # (or for the size to settle) would see it incomplete.
            pieces = [data[i : i + 2] for i in range(0, len(data), 2)] or [b""]
            for piece in pieces:
                time.sleep(0.05)
                os.write(fd, piece)
            time.sleep(0.05)
        else:
            os.write(fd, data)
    finally:
        os.close(fd)
    if atomic:
        os.rename(path, target)


class Bucket:
    """An s3:// destination: one PUT per file (a PUT appears whole: no slow or atomic mode)."""

    def __init__(self, url: str, endpoint_url: str | None) -> None:
        try:
            import boto3
        except ImportError:
            raise SystemExit(
                "simulation.py: s3:// needs boto3: pip install 'ingestd[s3]'"
            ) from None
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not bucket:
            raise SystemExit(f"simulation.py: {url!r}: no bucket name")
        self.bucket, self.prefix = bucket, prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = url
        self.client = boto3.session.Session().client("s3", endpoint_url=endpoint_url or None)
        try:
            self.client.head_bucket(Bucket=bucket)
        except self.client.exceptions.ClientError:
            self.client.create_bucket(Bucket=bucket)

    def put(self, name: str, content: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=content.encode())


def sleep_until(deadline: float) -> None:
    # Absolute deadlines: small oversleeps do not add up over a long schedule.
    while (remaining := deadline - time.monotonic()) > 0:
        time.sleep(min(remaining, 1.0))


def run(args: argparse.Namespace) -> int:
    if args.files is not None:
        rows = synthetic(
            args.files, args.interval_minutes, args.start, args.minutes_dist, args.seed
        )
    else:
        rows = read_schedule(args.schedule)
    events = plan(rows, args.lag_minutes, args.bad_files, args.seed)
    bucket: Bucket | None = None
    if str(args.dir).startswith("s3://"):
        if args.slow_write or args.atomic:
            raise SystemExit("simulation.py: --slow-write and --atomic mean nothing for s3://")
        bucket = Bucket(str(args.dir), args.s3_endpoint_url)
    else:
        directory = Path(args.dir)
        directory.mkdir(parents=True, exist_ok=True)
    arrivals = open(args.arrivals, "a", encoding="utf-8") if args.arrivals else None  # noqa: SIM115
    log_lock = threading.Lock()

    def land(name: str, content: str, bad: bool) -> None:
        if bucket is not None:
            bucket.put(name, content)
        else:
            write_file(directory, name, content, slow=args.slow_write, atomic=args.atomic)
        with log_lock:
            if arrivals is not None:
                entry = {"file": name, "minutes": content, "written_at": time.time(), "bad": bad}
                arrivals.write(json.dumps(entry) + "\n")
                arrivals.flush()
            if args.verbose:
                print(f"{time.strftime('%H:%M:%S')} wrote {name} ({content!r})", flush=True)

    writers: list[threading.Thread] = []
    start = time.monotonic()
    try:
        for offset, name, content, bad in events:
            sleep_until(start + offset * args.seconds_in_min)
            if args.slow_write:
                # A slow write must not hold back the next file's arrival: each gets a thread.
                writer = threading.Thread(target=land, args=(name, content, bad))
                writer.start()
                writers.append(writer)
            else:
                land(name, content, bad)
    finally:
        for writer in writers:
            writer.join()
        if arrivals is not None:
            arrivals.close()
    print(f"simulation: wrote {len(events)} files to {args.dir}", flush=True)
    return 0


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number >= 0")
    return value


def _whole(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= {minimum}")
    return value


def _count(text: str) -> int:
    return _whole(text, 0)


def _file_count(text: str) -> int:
    return _whole(text, 1)


def _interval(text: str) -> float:
    # Names have minute resolution: a shorter step would give several files one name.
    value = _non_negative(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1 (names have minute resolution)")
    return value


def _dist(text: str) -> str:
    try:
        draw_minutes(text, random.Random(0))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: use uniform:A:B, normal:MEAN:SD or const:X"
        ) from None
    return text


def _start(text: str) -> str:
    if not _is_name(text + ".txt"):
        raise argparse.ArgumentTypeError(f"{text!r} is not YYYY_MM_DD_HH_MM")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simulation.py",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("Examples:")[1].join(["Examples:", ""]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "dir", metavar="DIR", help="directory to populate (created), or s3://BUCKET[/PREFIX]"
    )
    parser.add_argument(
        "--s3-endpoint-url", help="s3:// DIR: the server (default AWS_ENDPOINT_URL, else AWS)"
    )
    parser.add_argument(
        "--schedule",
        type=Path,
        default=APPENDIX,
        help="TSV 'filename<TAB>minutes' (default: the appendix day, 96 files)",
    )
    parser.add_argument(
        "--seconds-in-min",
        type=_non_negative,
        default=60.0,
        help="real seconds per simulated minute (default 60; 0 = all at once)",
    )
    parser.add_argument(
        "--files", type=_file_count, help="synthetic schedule of N files instead of --schedule"
    )
    parser.add_argument(
        "--interval-minutes",
        type=_interval,
        default=15.0,
        help="synthetic: minutes between files (15)",
    )
    parser.add_argument(
        "--start",
        type=_start,
        default="2018_06_28_00_00",
        help="synthetic: first timestamp (2018_06_28_00_00)",
    )
    parser.add_argument(
        "--minutes-dist",
        type=_dist,
        default="uniform:12:37",
        help="synthetic: processing minutes, e.g. uniform:12:37, normal:25:6, const:0.5",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="random seed for lag, synthetic minutes (0)"
    )
    parser.add_argument(
        "--lag-minutes",
        type=_non_negative,
        default=0.0,
        help="delay each file by a random 0..M simulated minutes (may reorder)",
    )
    parser.add_argument(
        "--slow-write",
        action="store_true",
        help="create each file, then write it in pieces before closing",
    )
    parser.add_argument(
        "--atomic", action="store_true", help="write to a hidden temp name, then rename into place"
    )
    parser.add_argument(
        "--bad-files",
        type=_count,
        default=0,
        help="add K files with invalid contents (text, nan, negative, ...)",
    )
    parser.add_argument(
        "--arrivals",
        type=Path,
        help="append a JSON line per file written: file, minutes, written_at",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="print a line per file written"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except ScheduleError as exc:
        print(f"simulation.py: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"simulation.py: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
