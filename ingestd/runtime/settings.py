"""Every option of `ingestd run`, its default, its check and its help, in one place.

`Settings` is the frozen result the daemon runs with. `OPTIONS` describes each option once;
the CLI builds its arguments and `INGESTD_*` environment defaults from it, so nothing is
spelled out three times.
"""

from __future__ import annotations

import math
import os
import re
import socket
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

LOG_FORMATS = ("auto", "json", "console")
LOG_LEVELS = ("debug", "info", "warning", "error")
PG_CONVERTERS = ("exact", "duckdb")
FORMATS = ("json", "csv", "tsv", "parquet", "auto")


@dataclass(frozen=True)
class BadRows:
    """`--bad-rows`: fail the file at the first bad row, or keep bad rows apart (rejects) up
    to a count or a share of the file's rows, past which the file fails with nothing loaded."""

    reject: bool = False
    most: int | None = None  # reject:N
    percent: float | None = None  # reject:P%

    def __str__(self) -> str:
        if not self.reject:
            return "fail"
        if self.most is not None:
            return f"reject:{self.most}"
        if self.percent is not None:
            return f"reject:{self.percent:g}%"
        return "reject"

    def over(self, rejected: int, rows: int) -> bool:
        """Whether `rejected` of `rows` seen so far is past the limit."""
        if self.most is not None:
            return rejected > self.most
        if self.percent is not None:
            return rejected * 100 > self.percent * rows
        return False


def bad_rows(text: str) -> BadRows:
    kind, sep, limit = text.strip().partition(":")
    if kind == "fail" and not sep:
        return BadRows()
    if kind != "reject":
        raise ValueError(f"{text!r}: give fail, reject, reject:N or reject:P%")
    if not sep:
        return BadRows(reject=True)
    try:
        if limit.endswith("%"):
            percent = float(limit[:-1])
            if not math.isfinite(percent) or not 0 <= percent <= 100:
                raise ValueError
            return BadRows(reject=True, percent=percent)
        most = int(limit)
        if most < 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"{text!r}: N must be a whole number >= 0, P% a share 0-100%") from None
    return BadRows(reject=True, most=most)


def column_name(text: str) -> str:
    if not text or len(text.encode()) > 63 or "\x00" in text:
        raise ValueError(f"{text!r} is not a column name (1 to 63 bytes)")
    return text


def delimiter(text: str) -> str:
    if text == "\\t":
        text = "\t"
    if len(text) != 1 or text in ('"', "\r", "\n", "\\"):
        raise ValueError(f"{text!r} is not one character (a tab: \\t)")
    return text


@dataclass(frozen=True)
class Settings:
    # Where files come from: a directory's absolute path, or a URL its source kind reads
    # (`ingestd.sources`).
    source: str
    # The state dir: the file ledger's, and a local source's clock; None when neither needs
    # one (a bucket with a database ledger).
    state_dir: Path | None
    worker_id: str
    host: str
    # The source's identity in the ledger (`ingestd.sources.identity`): what its files are
    # keyed by, shared by every worker of the fleet.
    source_id: str
    seconds_in_min: float = 60.0
    concurrency: int = 1
    rescan_interval: float = 2.0
    settle: float = 1.0
    max_attempts: int = 3
    max_minutes: float = 1440.0
    handler: str = "simulate"
    log_format: str = "auto"
    log_level: str = "info"
    exit_when_idle: float | None = None
    drain_timeout: float = 10.0
    heartbeat_interval: float = 5.0
    watch: bool = True
    output_dir: Path | None = None  # None: the source kind has no default (a bucket)
    columns: tuple[str, ...] | None = None
    tsv_header: bool = False
    pg_url: str | None = None  # None: DATABASE_URL, else libpq's PG* variables
    pg_table: str | None = None
    pg_schema: str = "ingestd"
    pg_converter: str = "exact"
    format: str = "json"  # what the pg handler reads: json, csv, tsv, parquet, or auto
    csv_header: bool = False  # the first CSV/TSV line names the columns
    csv_delimiter: str | None = None  # None: a comma for CSV (sniffed by auto), a tab for TSV
    csv_null: str | None = None  # None: an unquoted empty field for CSV, \N for TSV
    bad_rows: BadRows = BadRows()
    on_new_columns: str = "ignore"  # a file's fields the table lacks: ignore|fail|rescue|add
    rescue_column: str = "_rescued_data"  # --on-new-columns rescue: the jsonb column
    pg_create_table: bool = False  # make a missing --pg-table from the first file
    pg_file_column: str | None = None  # each row's load id, for `ingestd reload`
    ledger: str | None = None  # postgresql://...; None: the file ledger in state_dir
    s3_endpoint_url: str | None = None  # None: AWS_ENDPOINT_URL, else AWS's own endpoints
    s3_region: str | None = None  # None: AWS_REGION / the AWS config
    s3_path_style: bool = False
    one_per_key: bool = False  # at most one file of a key in work, in timestamp order
    on_key_failure: str = "continue"  # continue | block
    key_pattern: str | None = None  # None: YYYY_MM_DD_HH_MM.txt and KEY_YYYY_MM_DD_HH_MM.txt
    publish_in_order: bool = False  # outputs staged, then moved into OUT in name order per key
    on_done: str = "keep"  # keep | delete | move:DIR (source.Disposal)
    on_failed: str = "keep"
    metrics_textfile: Path | None = None  # rewritten with each heartbeat
    metrics_listen: tuple[str, int] | None = None  # (host, port) of the HTTP endpoint
    fleet: str | None = None  # the source's identity in the ledger, when not its location
    console: bool = False  # the web console's pages on the metrics port too
    console_actions: bool = False  # ... with retry, pause and resume for a token's holder
    console_token_file: Path | None = None  # NAME:TOKEN lines


def fleet_name(text: str) -> str:
    if not text or len(text) > 200 or not text.isprintable():
        raise ValueError(f"{text!r} is not a usable fleet name (printable, max 200)")
    return text


def default_worker_id(host: str | None = None, pid: int | None = None) -> str:
    return f"{host or socket.gethostname()}:{pid or os.getpid()}"


# ---- option parsing: each raises ValueError with a message a person can act on ----


def _number(text: str, *, minimum: float, strict: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is not a finite number")
    if value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        raise ValueError(f"{text!r} must be {relation} {minimum:g}")
    return value


def non_negative(text: str) -> float:
    return _number(text, minimum=0.0)


def positive(text: str) -> float:
    return _number(text, minimum=0.0, strict=True)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"{text!r} must be >= 1")
    return value


def worker_id(text: str) -> str:
    # The id names a heartbeat file and appears in logs: keep it to safe characters.
    if not text or len(text) > 200 or "/" in text or not text.isprintable() or text[0] == ".":
        raise ValueError(f"{text!r} is not a usable worker id (printable, no '/', max 200)")
    return text


def column_list(text: str) -> tuple[str, ...]:
    columns = tuple(c.strip() for c in text.split(","))
    if not all(columns) or len(set(columns)) != len(columns):
        raise ValueError(f"{text!r} must be distinct, non-empty names separated by commas")
    return columns


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]{0,62}")


def identifier(text: str) -> str:
    # Plain SQL identifiers only: they are quoted when used, but a name that needs quoting
    # in the first place is far likelier a typo.
    if not _IDENTIFIER.fullmatch(text):
        raise ValueError(f"{text!r} is not a plain SQL name (letters, digits, _)")
    return text


def table_name(text: str) -> str:
    parts = text.split(".")
    if len(parts) > 2:
        raise ValueError(f"{text!r}: give TABLE or SCHEMA.TABLE")
    for part in parts:
        identifier(part)
    return text


def host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT (e.g. 127.0.0.1:9464, or :9464 for all)")
    return host.strip("[]") or "0.0.0.0", int(port)


def key_pattern(text: str) -> str:
    from ingestd.contracts.naming import compile_pattern

    compile_pattern(text)  # ValueError says what is missing
    return text


def disposal(text: str) -> str:
    from ingestd.contracts.source import Disposal

    return str(Disposal.parse(text))


def yes_no(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{text!r} is not a yes/no value")


@dataclass(frozen=True)
class Option:
    """One `ingestd run` option: `--flag`, its `INGESTD_*` variable and its parser."""

    name: str  # Settings field
    parse: Callable[[str], Any]
    help: str
    metavar: str = "VALUE"
    choices: tuple[str, ...] | None = None
    flag: bool = False  # a switch: --name / --no-name

    @property
    def cli(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "INGESTD_" + self.name.upper()

    @property
    def default(self) -> Any:
        """The Settings default: help texts show it, so it is written down only once."""
        return _DEFAULTS.get(self.name)


_DEFAULTS = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}

OPTIONS: tuple[Option, ...] = (
    Option(
        "seconds_in_min",
        non_negative,
        "real seconds per simulated minute",
        metavar="S",
    ),
    Option("concurrency", positive_int, "files this process works on at once", metavar="N"),
    Option(
        "state_dir", Path, "shared bookkeeping directory (default DIR/.ingestd)", metavar="PATH"
    ),
    Option("rescan_interval", positive, "seconds between directory rescans", metavar="S"),
    Option(
        "settle",
        non_negative,
        "seconds a file must stay unchanged to count as written",
        metavar="S",
    ),
    Option("max_attempts", positive_int, "attempts before a file is failed as poison", metavar="N"),
    Option("max_minutes", positive, "largest valid processing time in minutes", metavar="M"),
    Option("handler", str, "simulate, tsv, pg, or package.module:callable", metavar="NAME"),
    Option("worker_id", worker_id, "id in logs and manifest (default HOST:PID)", metavar="ID"),
    Option("log_format", str, "auto: console on a TTY, else JSON", choices=LOG_FORMATS),
    Option("log_level", str, "minimum level logged", choices=LOG_LEVELS),
    Option("exit_when_idle", non_negative, "exit 0 after this many idle seconds", metavar="S"),
    Option("drain_timeout", non_negative, "seconds in-flight files get at shutdown", metavar="S"),
    Option("heartbeat_interval", positive, "seconds between heartbeat writes", metavar="S"),
    Option("watch", yes_no, "use filesystem events (--no-watch: rescans only)", flag=True),
    Option(
        "output_dir",
        Path,
        "where the tsv handler writes NAME.tsv (default DIR/out)",
        metavar="PATH",
    ),
    Option("columns", column_list, "tsv columns a,b,c (default: union of keys)", metavar="A,B,C"),
    Option("tsv_header", yes_no, "write a header line in TSV output", flag=True),
    Option(
        "pg_url",
        str,
        "pg handler: postgresql:// URL (default DATABASE_URL, else the PG* variables)",
        metavar="URL",
    ),
    Option("pg_table", table_name, "pg handler: the table rows go to", metavar="[SCHEMA.]TABLE"),
    Option("pg_schema", identifier, "schema of ingestd's own tables", metavar="NAME"),
    Option(
        "ledger",
        str,
        "where coordination lives: postgresql://... or a state dir (file:PATH)",
        metavar="URL",
    ),
    Option(
        "s3_endpoint_url",
        str,
        "s3:// source: an S3-compatible server's URL (default AWS_ENDPOINT_URL, else AWS)",
        metavar="URL",
    ),
    Option("s3_region", str, "s3:// source: the region (default AWS_REGION)", metavar="NAME"),
    Option("s3_path_style", yes_no, "s3:// source: path-style addressing", flag=True),
    Option(
        "pg_converter",
        str,
        "pg handler: exact (every number as written) or duckdb (fast; numbers via double)",
        choices=PG_CONVERTERS,
    ),
    Option(
        "format",
        str,
        "pg handler: what the files hold; auto tells Parquet, JSON and CSV by their bytes",
        choices=FORMATS,
    ),
    Option("csv_header", yes_no, "pg handler: the first CSV/TSV line names columns", flag=True),
    Option(
        "csv_delimiter",
        delimiter,
        "pg handler: the CSV/TSV field delimiter (default , for CSV, tab for TSV)",
        metavar="CHAR",
    ),
    Option(
        "csv_null",
        str,
        "pg handler: the CSV/TSV text of a NULL (default: an unquoted empty field; TSV \\N)",
        metavar="TEXT",
    ),
    Option(
        "bad_rows",
        bad_rows,
        "pg handler: fail the file at a bad row, or reject[:N|:P%] to keep bad rows in "
        "ingestd.rejects (past N rows or P% the file fails, nothing loaded)",
        metavar="POLICY",
    ),
    Option(
        "on_new_columns",
        str,
        "pg handler: fields the table has no column for are left out (ignore), fail the file, "
        "go into --rescue-column as JSON (rescue), or become new columns (add)",
        choices=("ignore", "fail", "rescue", "add"),
    ),
    Option(
        "rescue_column",
        column_name,
        "pg handler: the json/jsonb column --on-new-columns rescue fills",
        metavar="NAME",
    ),
    Option(
        "pg_create_table",
        yes_no,
        "pg handler: make a missing --pg-table from the first file, typed from its values",
        flag=True,
    ),
    Option(
        "pg_file_column",
        column_name,
        "pg handler: a bigint column stamped with each row's load id (made if missing), so "
        "ingestd reload can replace a file's rows",
        metavar="NAME",
    ),
    Option("one_per_key", yes_no, "one file of a key in work at a time, oldest first", flag=True),
    Option(
        "on_key_failure",
        str,
        "with --one-per-key: a failed file lets its key continue, or blocks it",
        choices=("continue", "block"),
    ),
    Option(
        "publish_in_order",
        yes_no,
        "stage each file's outputs and move them into the output dir in name order per key, "
        "with OUT/_watermark saying how far",
        flag=True,
    ),
    Option(
        "key_pattern",
        key_pattern,
        "a regex for other naming schemes: named groups year, month, day, hour, minute, "
        "and key (default: [KEY_]YYYY_MM_DD_HH_MM.txt)",
        metavar="REGEX",
    ),
    Option(
        "on_done",
        disposal,
        "what becomes of a source file once it is recorded done: keep, delete, or move:DIR "
        "(relative DIR: inside the source)",
        metavar="ACTION",
    ),
    Option("on_failed", disposal, "the same for a failed file", metavar="ACTION"),
    Option(
        "metrics_textfile",
        Path,
        "write Prometheus metrics to this file with each heartbeat (node_exporter textfile)",
        metavar="PATH",
    ),
    Option(
        "fleet",
        fleet_name,
        "the source's name in the ledger (default: its real path or s3:// location); give "
        "the same NAME on hosts that reach one directory by different paths",
        metavar="NAME",
    ),
    Option(
        "metrics_listen",
        host_port,
        "serve Prometheus metrics over HTTP on HOST:PORT (off by default)",
        metavar="HOST:PORT",
    ),
    Option(
        "console",
        yes_no,
        "serve the web console's pages on the --metrics-listen port too",
        flag=True,
    ),
    Option(
        "console_actions",
        yes_no,
        "with --console: allow retry, pause and resume (POST, with a token)",
        flag=True,
    ),
    Option(
        "console_token_file",
        Path,
        "NAME:TOKEN lines: who may act (needed by --console-actions)",
        metavar="PATH",
    ),
)
