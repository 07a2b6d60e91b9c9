"""Prometheus metrics (docs/guides/monitoring.md): what a worker counts, what the fleet looks
like, and the exposition of both.

`WorkerMetrics` is one worker's registry: the worker feeds its counters and histograms as files
finish, the daemon sets its gauges with each heartbeat and then writes the exposition to
`--metrics-textfile` (atomically: a temp file renamed over it, for node_exporter's textfile
collector) or serves it on `--metrics-listen`. `fleet_exposition` renders the same names from
the ledger alone, for `ingestd status --prometheus`. Needs the `metrics` extra
(`prometheus_client`); imported only when one of those is asked for.

No file name is ever a label: names are unbounded, and a series per file would grow forever.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    make_wsgi_app,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingestd import __version__
from ingestd.contracts.ledger import DONE, FAILED, Record, Summary
from ingestd.contracts.naming import parse_name
from ingestd.runtime.http import App, text
from ingestd.runtime.http import serve as serve_wsgi

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from ingestd.runtime.probes import Probes

# The `_created` series double every counter for a timestamp nobody here needs.
disable_created_metrics()  # type: ignore[no-untyped-call]

# How an attempt ended. They partition: files recorded done = done + redone.
OUTCOME_DONE = "done"  # recorded done on its first attempt
OUTCOME_REDONE = "redone"  # recorded done after an earlier attempt died or crashed
OUTCOME_FAILED = "failed"
OUTCOME_DUPLICATE = "duplicate_suppressed"  # a peer recorded it first: nothing written
OUTCOMES = (OUTCOME_DONE, OUTCOME_REDONE, OUTCOME_FAILED, OUTCOME_DUPLICATE)

# From a second to a day: the simulated files take 12-37 minutes, test runs milliseconds.
SECONDS_BUCKETS = (0.01, 0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 2700, 3600, 7200, 21600, 86400)


def outcome_of(record: Record) -> str:
    if record.status == FAILED:
        return OUTCOME_FAILED
    return OUTCOME_REDONE if record.attempt > 1 else OUTCOME_DONE


def _seconds_between(start: str | None, end: str | None) -> float | None:
    try:
        delta = datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
    except ValueError:
        return None
    return max(delta.total_seconds(), 0.0)


def timestamp(text: str | None) -> float | None:
    """Seconds since the epoch of a record's ISO time, or None."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Gauges:
    """What the daemon knows at one heartbeat; None: unknown (not exposed)."""

    in_progress: int
    pending: int
    paused: bool
    oldest_pending: float | None  # when the oldest waiting file was first seen (epoch s)
    ledger_files: int  # files with a finished record, as of this worker's last sync
    scan_seconds: float | None = None
    workers_alive: int | None = None  # fleet, from the heartbeats
    failed: int | None = None  # fleet: files failed and not retried


class WorkerMetrics:
    """One worker's metrics in their own registry (never the global one: tests run many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._per_file(self.registry)
        self._gauges(self.registry)
        # --publish-in-order. A key is a label: keys are a few clients, not files.
        self.published = Counter("ingestd_published_files",
                                 "Files whose outputs this worker published",
                                 registry=self.registry)  # fmt: skip
        self.watermark = Gauge(
            "ingestd_publish_watermark_timestamp_seconds",
            "The time the newest file published in order stands for (its name), per key",
            ["key"],
            registry=self.registry,
        )
        info = Gauge("ingestd_build_info", "The running version", ["version"],
                     registry=self.registry)  # fmt: skip
        info.labels(__version__).set(1)
        self._oldest_known = False

    def _per_file(self, r: CollectorRegistry) -> None:
        """What each file finished here adds to."""
        self.files = Counter(
            "ingestd_files", "Files this worker finished, by outcome", ["outcome"], registry=r
        )
        for outcome in OUTCOMES:
            self.files.labels(outcome)  # every series present from the start, at 0
        self.processing = Histogram(
            "ingestd_processing_seconds",
            "From claim to record, per file finished here",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "ingestd_arrival_to_done_seconds",
            "From first seen to recorded done, per file done here",
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.conflicts = Counter(
            "ingestd_claim_conflicts", "Claims lost to a peer holding the file", registry=r
        )
        self.last_done = Gauge(
            "ingestd_last_done_timestamp_seconds", "When this worker last recorded a file done",
            registry=r,
        )  # fmt: skip

    def _gauges(self, r: CollectorRegistry) -> None:
        """What each heartbeat sets."""
        self.in_progress = Gauge(
            "ingestd_files_in_progress", "Files this worker is processing", registry=r
        )
        self.pending = Gauge(
            "ingestd_files_pending", "Files present, unfinished and not in hand here", registry=r
        )
        self.oldest = Gauge(
            "ingestd_oldest_pending_timestamp_seconds",
            "When the oldest file waiting here was first seen (absent: none waiting)",
            registry=r,
        )
        self.failed = Gauge(
            "ingestd_files_failed", "Files failed fleet-wide and not retried", registry=r
        )
        self.ledger_files = Gauge(
            "ingestd_ledger_files", "Files with a finished record in the ledger", registry=r
        )
        self.scan = Gauge(
            "ingestd_scan_duration_seconds", "How long the last full scan took", registry=r
        )
        self.alive = Gauge("ingestd_workers_alive", "Workers with a fresh heartbeat", registry=r)
        self.paused = Gauge("ingestd_paused", "1 while the fleet is paused", registry=r)

    # ---- fed by the worker as files finish ----

    def finished(self, record: Record) -> None:
        outcome = outcome_of(record)
        self.files.labels(outcome).inc()
        if (took := _seconds_between(record.started_at, record.finished_at)) is not None:
            self.processing.observe(took)
        if record.status == DONE:
            if (waited := _seconds_between(record.seen_at, record.finished_at)) is not None:
                self.latency.observe(waited)
            if (at := timestamp(record.finished_at)) is not None:
                self.last_done.set(at)

    def publishing(self, published: int, marks: dict[str, str]) -> None:
        """After a pass: files it published, and each key's watermark."""
        self.published.inc(published)
        for key, name in marks.items():
            if (stamp := parse_name(name)) is not None:
                self.watermark.labels(key).set(stamp.replace(tzinfo=UTC).timestamp())

    def duplicate(self) -> None:
        self.files.labels(OUTCOME_DUPLICATE).inc()

    def conflict(self) -> None:
        self.conflicts.inc()

    # ---- set by the daemon with each heartbeat ----

    def update(self, gauges: Gauges) -> None:
        self.in_progress.set(gauges.in_progress)
        self.pending.set(gauges.pending)
        self.paused.set(int(gauges.paused))
        self.ledger_files.set(gauges.ledger_files)
        if gauges.oldest_pending is not None:
            self.oldest.set(gauges.oldest_pending)
        else:
            self.oldest.set(float("nan"))  # none waiting: NaN, not a misleading 0
        if gauges.scan_seconds is not None:
            self.scan.set(gauges.scan_seconds)
        if gauges.workers_alive is not None:
            self.alive.set(gauges.workers_alive)
        if gauges.failed is not None:
            self.failed.set(gauges.failed)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def write_textfile(path: Path, exposition: bytes) -> None:
    """Replace `path` atomically: a collector never reads half a file.

    The temp file is a dot file in the same directory (the same filesystem, so the rename is
    atomic; node_exporter reads only `*.prom`, so it never picks the temp file up).
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "wb") as out:
            out.write(exposition)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def serve(
    metrics: WorkerMetrics,
    host: str,
    port: int,
    probes: Probes | None = None,
    pages: App | None = None,
) -> WSGIServer:
    """Serve `/metrics`, and `/healthz` and `/readyz` (200 or 503 with the verdict's line),
    in daemon threads; any other path goes to `pages` (the console, with `--console`), else
    404. The server (`.shutdown()` ends it)."""
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body: Iterable[bytes] = exposition(environ, start_response)
            return body
        if path in ("/healthz", "/readyz") and probes is not None:
            verdict = probes.live() if path == "/healthz" else probes.ready()
            status = "200 OK" if verdict.healthy else "503 Service Unavailable"
            return text(start_response, status, verdict.line)
        if pages is not None:
            return pages(environ, start_response)
        return text(start_response, "404 Not Found", f"not found: {path} (try /metrics)")

    return serve_wsgi(app, host, port, "metrics-http")


# ---- the fleet's view, from the ledger alone (`ingestd status --prometheus`) ----


@dataclass(frozen=True)
class Fleet:
    """What `ingestd status` knows, reduced to numbers."""

    outcomes: dict[str, int]  # OUTCOME_* -> files
    in_progress: int
    pending: int
    failed: int
    oldest_pending: float | None
    last_done: float | None
    ledger_files: int
    workers_alive: int
    paused: bool


def fleet_outcomes(final: Iterable[Summary]) -> dict[str, int]:
    """Files by outcome, from each file's final done or failed record."""
    counts = dict.fromkeys((OUTCOME_DONE, OUTCOME_REDONE, OUTCOME_FAILED), 0)
    for record in final:
        if record.status == FAILED:
            counts[OUTCOME_FAILED] += 1
        elif (record.attempt or 1) > 1:
            counts[OUTCOME_REDONE] += 1
        else:
            counts[OUTCOME_DONE] += 1
    return counts


class _FleetCollector(Collector):
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet

    def collect(self) -> Iterator[Metric]:
        f = self.fleet
        files = CounterMetricFamily(
            "ingestd_files", "Files recorded in the ledger, by outcome", labels=["outcome"]
        )
        for outcome, count in f.outcomes.items():
            files.add_metric([outcome], count)
        yield files

        def gauge(name: str, text: str, value: float | None) -> Iterator[Metric]:
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)

        yield from gauge("ingestd_files_in_progress", "Files held by a worker", f.in_progress)
        yield from gauge("ingestd_files_pending", "Files present and unclaimed", f.pending)
        yield from gauge("ingestd_files_failed", "Files failed and not retried", f.failed)
        yield from gauge(
            "ingestd_oldest_pending_timestamp_seconds",
            "Modification time of the oldest unfinished file",
            f.oldest_pending,
        )
        yield from gauge(
            "ingestd_last_done_timestamp_seconds", "When a file was last recorded done",
            f.last_done,
        )  # fmt: skip
        yield from gauge("ingestd_ledger_files", "Files with a finished record in the ledger",
                         f.ledger_files)  # fmt: skip
        yield from gauge("ingestd_workers_alive", "Workers with a fresh heartbeat",
                         f.workers_alive)  # fmt: skip
        yield from gauge("ingestd_paused", "1 while the fleet is paused", int(f.paused))
        info = GaugeMetricFamily("ingestd_build_info", "This version", labels=["version"])
        info.add_metric([__version__], 1)
        yield info


def fleet_exposition(fleet: Fleet) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_FleetCollector(fleet))
    return generate_latest(registry)
