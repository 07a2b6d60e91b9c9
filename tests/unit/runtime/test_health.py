"""The liveness and readiness verdicts (pure)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ingestd.contracts.ledger import Heartbeat
from ingestd.runtime.health import live, replaced


def beat(worker: str, age: float, host: str = "h1", interval: float = 5.0) -> Heartbeat:
    return Heartbeat(worker=worker, host=host, interval=interval, age_seconds=age)


def test_a_fresh_heartbeat_is_live_a_stale_one_is_not() -> None:
    assert live([beat("a", 14.9)], "a").healthy
    verdict = live([beat("a", 15.1)], "a")
    assert not verdict.healthy and "stale after 15 s" in verdict.line


def test_by_default_every_worker_on_this_host_must_be_live() -> None:
    beats = [beat("a", 1.0), beat("b", 1.0, host="h2"), beat("c", 99.0, host="h2")]
    assert live(beats, None, host="h1").healthy  # h2's lost worker is not ours to judge
    assert not live(beats, None, host="h2").healthy
    none = live(beats, None, host="h3")
    assert not none.healthy and "no worker on h3" in none.line
    assert not live(beats, "zz").healthy


def test_a_lost_worker_replaced_on_its_host_is_not_the_hosts_verdict() -> None:
    now = time.time()
    started = datetime.fromtimestamp(now - 30, UTC).isoformat()
    dead = beat("h1:100", 60.0)  # last heartbeat a minute ago
    heir = Heartbeat(worker="h1:200", host="h1", age_seconds=1.0, started_at=started)
    assert replaced(dead, [dead, heir], now)
    assert live([dead, heir], None, host="h1").healthy
    # A peer that was already running when the other died replaced nothing.
    old = Heartbeat(worker="h1:300", host="h1", age_seconds=1.0,
                    started_at=datetime.fromtimestamp(now - 3600, UTC).isoformat())  # fmt: skip
    assert not replaced(dead, [dead, old], now)
    assert not live([dead, old], None, host="h1").healthy
    assert not live([dead, heir], "h1:100").healthy  # asked by its id: judged all the same
