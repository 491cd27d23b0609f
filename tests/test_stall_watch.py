"""The stall watch of `up`'s spool keeper (lms_events/spooling.py): a stream app that stops
consuming without crashing is found from offsets alone, with a clock the test moves."""

from __future__ import annotations

from lms_events.spooling import StallWatch

P0, P1 = ("events.raw.g3", 0), ("events.raw.g3", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_waiting_messages_and_no_committed_offset_moving_is_a_stall_said_once_per_period() -> None:
    clock = Clock()
    watch = StallWatch(stall_s=120, clock=clock)
    published, committed = {P0: 50, P1: 9}, {P0: 40, P1: 10}  # P0's offsets 40..50 wait
    assert not watch.observe(published, committed)
    clock.now += 119
    assert not watch.observe(published, committed)
    clock.now += 2
    assert watch.observe(published, committed)
    # said once: the restarted app gets another period to catch up
    clock.now += 60
    assert not watch.observe(published, committed)
    clock.now += 61
    assert watch.observe(published, committed)


def test_moving_offsets_or_nothing_waiting_is_no_stall() -> None:
    clock = Clock()
    watch = StallWatch(stall_s=120, clock=clock)
    for step in range(10):  # consuming, slowly: an offset moves every 100 s
        clock.now += 100
        assert not watch.observe({P0: 5_000}, {P0: 40 + step})
    clock.now += 1_000  # idle: everything committed, nothing new published
    assert not watch.observe({P0: 60}, {P0: 61})
    clock.now += 1_000
    assert not watch.observe({P0: 60}, {P0: 61})
    # a partition the stream app never committed counts as waiting from offset 0
    assert not watch.observe({P1: 0}, {P0: 61})
    clock.now += 121
    assert watch.observe({P1: 0}, {P0: 61})


def test_a_stall_names_the_partitions_that_wait() -> None:
    clock = Clock()
    watch = StallWatch(stall_s=120, clock=clock)
    published, committed = {P0: 50, P1: 9}, {P0: 40, P1: 10}
    watch.observe(published, committed)
    clock.now += 121
    assert watch.observe(published, committed)
    assert watch.waiting == ["events.raw.g3/0 committed 40, spooled up to 50"]
