"""The ready queue (oldest first, each name once) and settling (a file unchanged for --settle)."""

import asyncio

from ingestd.core.ready import ReadyQueue, Settling


def test_a_file_settles_after_staying_unchanged() -> None:
    settling = Settling(settle=1.0)
    assert not settling.observe("a", (10, 1), now=0.0)
    assert settling.next_deadline() == 1.0
    assert not settling.observe("a", (10, 1), now=0.5)
    assert settling.observe("a", (10, 1), now=1.0)
    assert len(settling) == 0


def test_a_growing_file_never_settles_until_it_stops() -> None:
    settling = Settling(settle=1.0)
    for t in range(10):
        assert not settling.observe("a", (t, t), now=float(t))  # changes at every look
    assert not settling.observe("a", (9, 9), now=9.5)
    assert settling.observe("a", (9, 9), now=10.0)


def test_zero_settle_is_immediate_and_forget_resets() -> None:
    assert Settling(settle=0).observe("a", (1, 1), now=0)
    settling = Settling(settle=1.0)
    settling.observe("a", (1, 1), now=0)
    settling.forget("a")
    assert settling.next_deadline() is None
    assert not settling.observe("a", (1, 1), now=5)


async def test_queue_is_oldest_first_and_deduplicated() -> None:
    queue = ReadyQueue()
    assert queue.put("2018_06_28_00_15.txt")
    assert queue.put("2018_06_28_00_00.txt")
    assert not queue.put("2018_06_28_00_15.txt")
    assert len(queue) == 2
    assert await queue.get() == "2018_06_28_00_00.txt"
    assert await queue.get() == "2018_06_28_00_15.txt"
    assert queue.pop_nowait() is None


async def test_get_waits_for_put() -> None:
    queue = ReadyQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not getter.done()
    queue.put("2018_06_28_00_00.txt")
    assert await asyncio.wait_for(getter, 1) == "2018_06_28_00_00.txt"


def test_a_settled_file_seen_again_unchanged_is_ready_at_once() -> None:
    settling = Settling(settle=1.0)
    settling.observe("a", (10, 1), now=0.0)
    assert settling.observe("a", (10, 1), now=1.0)
    # A peer held it (claim busy); the next scan sees it unchanged: no second settle wait.
    assert settling.observe("a", (10, 1), now=1.1)
    # Rewritten: it must settle again.
    assert not settling.observe("a", (11, 2), now=1.2)
    settling.keep_only(set())
    assert len(settling) == 0 and not settling.observe("a", (11, 2), now=1.3)


def test_a_file_unchanged_for_longer_than_settle_by_its_own_clock_is_ready_at_once() -> None:
    settling = Settling(settle=1.0)
    assert settling.observe("a", (1, 5), now=100.0, age=1.5)  # complete before we looked
    assert not settling.observe("b", (1, 5), now=100.0, age=0.3)  # written 0.3 s ago...
    assert settling.next_deadline() == 100.7  # ...so 0.7 s more, not a full settle
    assert not settling.observe("b", (1, 5), now=100.6)
    assert settling.observe("b", (1, 5), now=100.7)
    assert not settling.observe("c", (1, 5), now=100.0, age=-5.0)  # mtime in the future
    assert settling.next_deadline() == 101.0


async def test_names_handed_back_keep_their_place_with_keys_and_another_scheme() -> None:
    from ingestd.contracts.naming import use_pattern

    names = ["b_2018_06_28_00_00.txt", "2018_06_28_00_15.txt", "a_2018_06_28_00_00.txt",
             "2018_06_28_00_00.txt", "2017_01_01_00_00.txt"]  # fmt: skip
    expected = ["2017_01_01_00_00.txt", "2018_06_28_00_00.txt", "a_2018_06_28_00_00.txt",
                "b_2018_06_28_00_00.txt", "2018_06_28_00_15.txt"]  # fmt: skip
    pattern = (r"(?P<key>[a-z]+)-(?P<year>\d{4})(?P<month>\d\d)(?P<day>\d\d)"
               r"T(?P<hour>\d\d)(?P<minute>\d\d)")  # fmt: skip
    other = ["b-20180628T0000", "a-20180628T0015", "a-20180628T0000", "a-20170101T0000"]
    by_time = sorted(other, key=lambda n: (n[2:], n[0]))  # the timestamp, then the key
    for scheme, given, order in ((None, names, expected), (pattern, other, by_time)):
        use_pattern(scheme)
        try:
            queue = ReadyQueue()
            for name in given:
                queue.put(name)
            first = queue.pop_many(3)
            for name in reversed(first):  # a claim pass hands back what it did not take
                queue.put(name)
            assert queue.pop_many(10) == order
        finally:
            use_pattern(None)
