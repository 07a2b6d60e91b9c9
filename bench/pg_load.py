"""PostgreSQL load: which converter keeps up with the database's own COPY?

One JSON Lines file (default 100 MB), one typed target table, a throwaway cluster with fsync on
(tests/pgcluster.py), each way loaded into a fresh table in one transaction, in one run:

- `COPY ceiling`: PostgreSQL's `COPY FROM` of the same rows prepared as COPY text beforehand
  (the conversion is not timed): the rate no loader of this data can beat.
- `server-side json`: the raw lines `COPY`ed into a temp `json` column (no work in Python at
  all), then `INSERT ... SELECT json_populate_record(...)`.
- `stdlib stream`: ingestd's own converter (`handlers/tsv.py`) in a thread, its output streamed
  into `COPY` as it is made.
- `orjson stream`: the same with `orjson.loads` per line, if installed.
- `msgspec typed rows`: ingestd's fast exact path (`handlers/pgrows.py`): msgspec decodes
  each object into exactly typed values in C and psycopg writes the rows into `COPY`.
- `psycopg write_row of rows decoded beforehand`: the rows of the line above, decoded before
  the clock starts: the driver's formatting and sending alone, the bound of any decoder.
- `binary COPY ceiling`, and the two lines above with `COPY (FORMAT binary)` (floats as
  floats, `jsonb` values as their raw text wrapped for the binary dumper), each against the
  binary ceiling measured just before it.
- `pyarrow read_json` (parse alone, if installed): it cannot fill a `jsonb` column (nested
  values become lists and structs Arrow's CSV writer refuses) and reads numbers as doubles.
- `jq` (conversion alone, if installed): `jq -r '[...] | @tsv'`, for scale.
- `duckdb stream`: DuckDB's `read_json` writing CSV into a FIFO that is streamed into `COPY
  ... (FORMAT csv)`, if installed.
- `ingestd --handler pg`, end to end, with each `--pg-converter`: one worker on the one file,
  and two workers on ten files of a tenth of the size (first claim to last record, from the
  manifest).
- Other formats and options, one worker, in rows/s beside a ceiling of the same run: `--format
  csv` (the same rows as CSV) against PostgreSQL's `COPY (FORMAT csv)` of that very file;
  `--format parquet` (pyarrow, if installed), the JSON with every 100th row bad (a string id)
  under `--bad-rows reject`, and the plain JSON alone, with `--pg-file-column` and with
  `--on-new-columns add`, each against the text COPY ceiling.

Each also reports its conversion alone (no database) where that makes sense. MB/s are of the
JSON input; the ratio is to the ceiling of the same run.

    python bench/pg_load.py [--mb 100] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import epoch, record, table
from pgcluster import PgCluster
from tsv_throughput import COLUMNS, generate

from ingestd.handlers.tsv import convert, field_text, iter_objects, row_text

DDL = (
    'id bigint, "user" text, event text, ok boolean, score double precision, tags jsonb, '
    "meta jsonb, note text"
)
JSON_COLUMNS = {"tags", "meta"}
_compact = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def rows_stdlib(path: Path) -> Iterator[bytes]:
    batch: list[str] = []
    with open(path, "rb") as source:
        for obj in iter_objects(source):
            batch.append(row_text(obj, COLUMNS))
            if len(batch) >= 2000:
                yield "".join(batch).encode()
                batch = []
    yield "".join(batch).encode()


def rows_orjson(path: Path) -> Iterator[bytes]:
    import orjson

    batch: list[str] = []
    with open(path, "rb") as source:
        for line in source:
            get = orjson.loads(line).get
            batch.append("\t".join([field_text(get(c)) for c in COLUMNS]) + "\n")
            if len(batch) >= 2000:
                yield "".join(batch).encode()
                batch = []
    yield "".join(batch).encode()


def rows_duckdb(path: Path) -> Iterator[bytes]:
    import duckdb

    types = ", ".join(f"'{c}': '{'JSON' if c in JSON_COLUMNS else 'VARCHAR'}'" for c in COLUMNS)
    with tempfile.TemporaryDirectory() as tmp:
        fifo = Path(tmp) / "rows.csv"
        os.mkfifo(fifo)
        errors: list[BaseException] = []

        def write() -> None:
            try:
                con = duckdb.connect()
                con.execute("SET threads = 1")
                con.execute(
                    f"COPY (SELECT {', '.join(repr(c).replace(chr(39), chr(34)) for c in COLUMNS)}"
                    f" FROM read_json('{path}', format = 'newline_delimited', "
                    f"columns = {{{types}}})) TO '{fifo}' (FORMAT csv, HEADER false)"
                )
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        with open(fifo, "rb") as stream:
            while chunk := stream.read(1 << 20):
                yield chunk
        writer.join()
        if errors:
            raise errors[0]


KINDS = ("int8", "text", "text", "bool", "float8", "jsonb", "jsonb", "text")


def typed_rows(path: Path) -> Iterator[list[object]]:
    from ingestd.handlers.pgrows import decoder_for

    decoder = decoder_for(tuple(COLUMNS), KINDS)
    assert decoder is not None, "msgspec is not installed"
    with open(path, "rb") as stream:
        yield from decoder.rows(stream)


def jq_tsv(path: Path) -> Iterator[bytes]:
    fields = ", ".join(f'(."{c}" | tojson)' if c in JSON_COLUMNS else f'."{c}"'
                       for c in COLUMNS)  # fmt: skip
    with subprocess.Popen(["jq", "-r", f"[{fields}] | @tsv", str(path)],
                          stdout=subprocess.PIPE) as proc:  # fmt: skip
        assert proc.stdout is not None
        while chunk := proc.stdout.read(1 << 20):
            yield chunk


def overlapped(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Produce in a thread while the caller sends: conversion overlaps the COPY."""
    done = object()
    pipe: queue.Queue[object] = queue.Queue(maxsize=8)

    def produce() -> None:
        for chunk in chunks:
            pipe.put(chunk)
        pipe.put(done)

    threading.Thread(target=produce, daemon=True).start()
    while (item := pipe.get()) is not done:
        yield item  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0)
    parser.add_argument("--rounds", type=int, default=3, help="pairs per way (median kept)")
    parser.add_argument("--quick", action="store_true", help="5 MB, one round")
    args = parser.parse_args()
    megabytes = 5.0 if args.quick else args.mb
    cluster = PgCluster(fsync=True)
    try:
        with tempfile.TemporaryDirectory(prefix="ingestd-bench-") as tmp:
            run(Path(tmp), megabytes, cluster, 1 if args.quick else args.rounds)
    finally:
        cluster.destroy()


def median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """The (rate, ceiling) pair whose ratio is the median of the rounds."""
    ordered = sorted(pairs, key=lambda pair: pair[0] / pair[1])
    return ordered[len(ordered) // 2]


def run(base: Path, megabytes: float, cluster: PgCluster, rounds: int) -> None:
    import psycopg as pg  # the `bench` extra: pip install -e '.[bench]'

    source = base / "2018_06_28_00_00.txt"
    count = generate(source, megabytes)
    size = source.stat().st_size
    prepared, *_ = convert(source, base, COLUMNS, False)
    conn = pg.connect(cluster.url(), autocommit=True)
    columns = ", ".join(f'"{c}"' for c in COLUMNS)

    def fresh() -> None:
        conn.execute("DROP SCHEMA IF EXISTS ingestd CASCADE")  # load records of earlier runs
        conn.execute("DROP TABLE IF EXISTS t")
        conn.execute(f"CREATE TABLE t ({DDL})")

    def copy(sql: str, chunks: Iterator[bytes]) -> None:
        with conn.transaction(), conn.cursor() as cur, cur.copy(sql) as sink:
            for chunk in chunks:
                sink.write(chunk)

    def copy_rows(rows: Iterator[list[object]]) -> None:
        with (
            conn.transaction(),
            conn.cursor() as cur,
            cur.copy(f"COPY t ({columns}) FROM STDIN") as sink,
        ):
            for row in rows:
                sink.write_row(row)

    binary_copy = f"COPY t ({columns}) FROM STDIN (FORMAT binary)"
    binary_file = base / "prepared.bin"

    def copy_binary_rows(rows: Iterator[list[object]]) -> None:
        with conn.transaction(), conn.cursor() as cur, cur.copy(binary_copy) as sink:
            sink.set_types(list(KINDS))
            for row in rows:
                sink.write_row(row)

    def file_chunks(path: Path) -> Iterator[bytes]:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                yield chunk

    def server_side() -> None:
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE raw (doc json) ON COMMIT DROP")
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY raw (doc) FROM STDIN (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
                ) as sink,
            ):
                for chunk in file_chunks(source):
                    sink.write(chunk)
            conn.execute("INSERT INTO t SELECT r.* FROM raw, json_populate_record(NULL::t, doc) r")

    ways: list[tuple[str, Callable[[], None], Callable[[], Iterator[Any]] | None]] = [
        ("COPY ceiling", lambda: copy(f"COPY t ({columns}) FROM STDIN", file_chunks(prepared)),
         None),
        ("server-side json", server_side, None),
        ("stdlib stream",
         lambda: copy(f"COPY t ({columns}) FROM STDIN", overlapped(rows_stdlib(source))),
         lambda: rows_stdlib(source)),
    ]  # fmt: skip
    try:
        import orjson  # noqa: F401

        ways.append((
            "orjson stream",
            lambda: copy(f"COPY t ({columns}) FROM STDIN", overlapped(rows_orjson(source))),
            lambda: rows_orjson(source),
        ))  # fmt: skip
    except ImportError:
        pass
    try:
        import msgspec  # noqa: F401

        ways.append(("msgspec typed rows", lambda: copy_rows(typed_rows(source)),
                     lambda: typed_rows(source)))  # fmt: skip
        # The driver's share: the same rows decoded beforehand (not timed), only psycopg's
        # formatting and sending left. Whatever this reaches, no decoder in front of it can.
        prebuilt = list(typed_rows(source))
        ways.append(("psycopg write_row of rows decoded beforehand",
                     lambda: copy_rows(iter(prebuilt)), None))  # fmt: skip
        binary_rows = [binary_row(row) for row in prebuilt]
        binary_ways = [
            ("binary COPY ceiling", lambda: copy(binary_copy, file_chunks(binary_file))),
            ("msgspec typed rows, binary write_row",
             lambda: copy_binary_rows(binary_row(row) for row in typed_rows(source))),
            ("binary write_row of rows decoded beforehand",
             lambda: copy_binary_rows(iter(binary_rows))),
        ]  # fmt: skip
    except ImportError:
        binary_ways = []
    try:
        import duckdb  # noqa: F401

        ways.append((
            "duckdb stream",
            lambda: copy(f"COPY t ({columns}) FROM STDIN (FORMAT csv)", rows_duckdb(source)),
            lambda: rows_duckdb(source),
        ))  # fmt: skip
    except ImportError:
        pass

    busy: dict[str, float] = {}  # way -> this process's CPU seconds per second of its load
    per_100mb: dict[str, float] = {}  # way -> the loading processes' CPU seconds per 100 MB

    def timed_load(load: Callable[[], None], name: str = "") -> float:
        fresh()
        start, cpu = time.perf_counter(), time.process_time()
        load()
        seconds = time.perf_counter() - start
        busy[name] = (time.process_time() - cpu) / seconds
        per_100mb[name] = (time.process_time() - cpu) / size * 1e8
        return size / seconds / 1e6

    ceiling_load = ways[0][1]
    # The server's speed drifts during a run (checkpoints, a busy machine: 60 to 113 MB/s in
    # one run): every way is compared with a ceiling measured right before it, `rounds`
    # times, and the pair with the median ratio is kept.
    results: list[tuple[str, float, float, float | None]] = []

    def against(
        ceiling_way: Callable[[], None], name: str, load: Callable[[], None]
    ) -> tuple[float, float]:
        """(MB/s, ceiling MB/s) of the round with the median ratio, each after its ceiling."""
        pairs = []
        for _ in range(rounds):
            ceiling = timed_load(ceiling_way)
            pairs.append((timed_load(load, name), ceiling))
            loaded = conn.execute("SELECT count(*) FROM t").fetchone()
            assert loaded is not None and loaded[0] == count, (name, loaded, count)
        return median_pair(pairs)

    for name, load, convert_only in ways:
        rate, ceiling = against(ceiling_load, name, load)
        alone = None
        if convert_only is not None:
            start = time.perf_counter()
            for _ in convert_only():
                pass
            alone = size / (time.perf_counter() - start) / 1e6
        results.append((name, rate, ceiling, alone))
    if binary_ways:
        # The binary ceiling: the same table dumped by the server in its binary format.
        fresh()
        ceiling_load()
        with (
            open(binary_file, "wb") as out,
            conn.cursor() as cur,
            cur.copy(f"COPY t ({columns}) TO STDOUT (FORMAT binary)") as dump,
        ):
            for data in dump:
                out.write(data)
        binary_ceiling = binary_ways[0][1]
        for name, load in binary_ways:
            rate, ceiling = against(binary_ceiling, name, load)
            results.append((name, rate, ceiling, None))
    try:
        import pyarrow.json as arrow_json

        # Parse alone: nested values come out as lists and structs, which Arrow's CSV writer
        # refuses and an explicit string type for them is refused too, so no jsonb column
        # can be filled without a Python pass over every value; numbers go through doubles.
        start = time.perf_counter()
        arrow_json.read_json(source, read_options=arrow_json.ReadOptions(use_threads=False))
        results.append(("pyarrow read_json, 1 thread (parse alone)", 0.0, 0.0,
                        size / (time.perf_counter() - start) / 1e6))  # fmt: skip
    except ImportError:
        pass
    if shutil.which("jq"):
        start = time.perf_counter()
        for _ in jq_tsv(source):
            pass
        results.append(("jq @tsv (conversion alone)", 0.0, 0.0,
                        size / (time.perf_counter() - start) / 1e6))  # fmt: skip
    url = cluster.url()
    tenths = []
    (base / "tenths").mkdir()
    for i in range(10):
        # Apart from `source`: the first tenth has its name (it overwrote it once, so the
        # one-worker rows measured a tenth of the file).
        part = base / "tenths" / f"2018_06_28_{i:02d}_00.txt"
        generate(part, megabytes / 10)
        tenths.append(part)
    for converter in ("exact", "duckdb"):
        for label, files, count_workers in (("1 worker", [source], 1),
                                            ("2 workers, 10 files", tenths, 2)):  # fmt: skip
            pairs = []
            name = f"ingestd --pg-converter {converter}, {label}"
            cpu = []
            for _ in range(rounds):
                ceiling = timed_load(ceiling_load)
                fresh()
                before = children_cpu()
                pairs.append((ingestd_load(base, files, count_workers, converter, url), ceiling))
                cpu.append(children_cpu() - before)
                loaded = conn.execute("SELECT count(*) FROM t").fetchone()
                assert loaded is not None and loaded[0] == sum(lines(f) for f in files), loaded
            rate, ceiling = median_pair(pairs)
            # The workers' CPU, start-up included, per 100 MB of input: the client's share.
            per_100mb[name] = (
                sorted(cpu)[len(cpu) // 2] / sum(f.stat().st_size for f in files) * 1e8
            )
            results.append((name, rate, ceiling, None))
    results.extend(format_rows(base, source, count, conn, columns, url, rounds, timed_load,
                               ceiling_load, fresh))  # fmt: skip
    rows = [
        [name, round(rate, 1) if rate else "", round(ceiling, 1) if ceiling else "",
         round(rate / ceiling, 2) if ceiling else "", "" if alone is None else round(alone, 1),
         round(busy[name], 2) if name in busy else "",
         round(per_100mb[name], 2) if name in per_100mb else ""]
        for name, rate, ceiling, alone in results
    ]  # fmt: skip
    print(f"{megabytes:g} MB of JSON Lines, {count} rows; the median of {rounds} rounds")
    # Client CPU: 1.0 means the loading process itself was the bound, not the server.
    headers = ["way", "MB/s", "ceiling just before", "ratio", "conversion alone MB/s",
               "client CPU s/s", "client CPU s per 100 MB"]  # fmt: skip
    print(table(headers, rows))
    record("pg_load", {"mb": megabytes, "rounds": rounds, "rows": rows})
    conn.close()


def format_rows(base: Path, source: Path, count: int, conn: Any, columns: str, url: str,
                rounds: int, timed_load: Callable[..., float], ceiling_load: Callable[[], None],
                fresh: Callable[[], None]) -> list[tuple[str, float, float, None]]:  # fmt: skip
    """Rows/s of ingestd on CSV, Parquet and 1% bad rows, each beside its ceiling (rows/s)."""
    csv_path = base / "csv" / source.name
    csv_path.parent.mkdir()
    with open(source, encoding="utf-8") as src, open(csv_path, "w", newline="") as out:
        writer = csv.writer(out)
        for line in src:
            obj = json.loads(line)
            writer.writerow([_csv_value(obj.get(c), c in JSON_COLUMNS) for c in COLUMNS])
    bad_path = base / "bad" / source.name
    bad_path.parent.mkdir()
    with open(source, encoding="utf-8") as src, open(bad_path, "w", encoding="utf-8") as out:
        for i, line in enumerate(src, start=1):
            out.write(line.replace('{"id": ', '{"id": "bad', 1).replace(",", '",', 1)
                      if i % 100 == 0 else line)  # fmt: skip
    size = source.stat().st_size

    def csv_ceiling() -> None:
        statement = f"COPY t ({columns}) FROM STDIN (FORMAT csv)"
        with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as sink:
            sink.write(csv_path.read_bytes())

    ways: list[tuple[str, Path, tuple[str, ...], Callable[[], None], int]] = [
        ("ingestd --format csv (ceiling: COPY of the same CSV)", csv_path,
         ("--format", "csv"), csv_ceiling, count),
        ("ingestd, JSON with 1% bad rows, --bad-rows reject", bad_path,
         ("--bad-rows", "reject"), ceiling_load, count - count // 100),
        ("ingestd, JSON (ceiling: text COPY)", source, (), ceiling_load, count),
        ("ingestd, JSON, --pg-file-column", source, ("--pg-file-column", "load_id"),
         ceiling_load, count),
        ("ingestd, JSON, --on-new-columns add (no new field: the survey's cost)", source,
         ("--on-new-columns", "add"), ceiling_load, count),
    ]  # fmt: skip
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq

        objects = [json.loads(line) for line in source.read_text(encoding="utf-8").splitlines()]
        arrays = {c: [(_compact(o.get(c)) if c in JSON_COLUMNS and o.get(c) is not None
                       else o.get(c)) for o in objects] for c in COLUMNS}  # fmt: skip
        parquet_path = base / "parquet" / source.name
        parquet_path.parent.mkdir()
        pq.write_table(pa.table(arrays), parquet_path)
        ways.append(("ingestd --format parquet (ceiling: text COPY)", parquet_path,
                     ("--format", "parquet"), ceiling_load, count))  # fmt: skip
    except ImportError:
        pass
    results = []
    for name, path, args, ceiling_way, rows in ways:
        pairs = []
        for _ in range(rounds):
            ceiling = timed_load(ceiling_way) * 1e6 / size * count  # rows/s
            fresh()
            seconds = size / (ingestd_load(base, [path], 1, "exact", url, args) * 1e6)
            pairs.append((rows / (seconds * path.stat().st_size / size), ceiling))
            loaded = conn.execute("SELECT count(*) FROM t").fetchone()
            assert loaded is not None and loaded[0] == rows, (name, loaded, rows)
        rate, ceiling = median_pair(pairs)
        results.append((name + ", rows/s (thousands)", rate / 1e3, ceiling / 1e3, None))
    return results


def _csv_value(value: object, as_json: bool) -> object:
    if value is None:
        return ""
    if as_json:
        return _compact(value)
    if isinstance(value, bool):
        return "t" if value else "f"
    return value


def binary_row(row: list[Any]) -> list[Any]:
    """A typed row (`typed_rows`) as binary COPY takes it: float columns as floats (the
    text is kept for text COPY, exact as written), jsonb as its raw text, sent as is."""
    from psycopg.types.json import Jsonb

    out = list(row)
    for i, kind in enumerate(KINDS):
        value = out[i]
        if value is None:
            continue
        if kind == "float8":
            out[i] = float(value)
        elif kind == "jsonb":
            out[i] = Jsonb(value, dumps=_as_is)
    return out


def _as_is(text: Any) -> str:
    return str(text)


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def ingestd_load(base: Path, files: list[Path], count: int, converter: str, url: str,
                 extra: tuple[str, ...] = ()) -> float:  # fmt: skip
    """MB/s of `python -m ingestd --handler pg` workers, first claim to last record."""
    data = Path(tempfile.mkdtemp(prefix=f"drop-{converter}-{count}-", dir=base))  # per round
    for path in files:
        os.link(path, data / path.name)
    command = [sys.executable, "-m", "ingestd", str(data), "--handler", "pg", "--pg-url", url,
               "--pg-table", "t", "--pg-converter", converter, "--exit-when-idle", "0.5",
               "--log-format", "json", "--seconds-in-min", "0", *extra]  # fmt: skip
    procs = [
        subprocess.Popen([*command, "--worker-id", f"w{i}"], stdout=subprocess.DEVNULL)
        for i in range(count)
    ]
    for proc in procs:
        proc.wait()
    records = [
        json.loads(line) for line in (data / ".ingestd" / "manifest.jsonl").read_text().splitlines()
    ]
    assert [r["status"] for r in records] == ["done"] * len(files), records
    start = min(epoch(r["started_at"]) for r in records)
    end = max(epoch(r["finished_at"]) for r in records)
    return sum(r["size"] for r in records) / (end - start) / 1e6


if __name__ == "__main__":
    main()
