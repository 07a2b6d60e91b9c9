"""--one-per-key: the rule (pure)."""

from __future__ import annotations

from builders import n

from ingestd.core.keys import KeyOrder


def test_only_a_keys_oldest_unfinished_file_may_go() -> None:
    order = KeyOrder()
    assert order.rescanned([n("a", 0), n("a", 15), n("b", 15)], [], []) == []
    assert order.eligible(n("a", 0)) and order.eligible(n("b", 15))
    assert not order.eligible(n("a", 15))
    order.hold(n("a", 15))
    assert order.finished(n("a", 0)) == [n("a", 15)]  # released the moment a:00 is recorded
    assert order.late(n("a", 0)) is None
    order.seen(n("a", 5))  # arrives after a:00 finished, older than nothing unfinished
    assert order.eligible(n("a", 5))
    order.finished(n("a", 15))
    assert order.late(n("a", 5)) == n("a", 15)  # older than the newest finished: late


def test_the_claim_time_check_asks_the_ledger_and_a_failure_may_block() -> None:
    order = KeyOrder(block_on_failure=True)
    order.rescanned([n("a", 0), n("a", 15)], [], [])
    done: set[str] = set()
    failed: set[str] = set()

    def blocked(name: str) -> str | None:
        return order.blocked_by(name, lambda x: x in done | failed, done.__contains__)

    assert blocked(n("a", 15)) == n("a", 0)
    assert blocked(n("a", 0)) is None
    failed.add(n("a", 0))
    assert blocked(n("a", 15)) == n("a", 0)  # block: a failed file holds its key
    assert order.finished(n("a", 0), failed=True) == []
    assert not order.eligible(n("a", 15))
    carry_on = KeyOrder()
    carry_on.rescanned([n("a", 15)], [n("a", 0)], [n("a", 0)])
    assert carry_on.eligible(n("a", 15))  # continue: the key moves on
