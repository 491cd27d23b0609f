"""What `up` does with the gateway's spool (ingest/spool.py) around the embedded broker.

- `replay`: at start, before the gateway serves, the previous run's
  segments go to the (new, empty) broker again. What ClickHouse already
  has costs nothing more: `event_loads` leaves stored events out, the other
  tables replace on their keys.
- `SpoolKeeper` opens the spool, replays it, and meanwhile deletes the
  segments the stream app has committed, i.e. whose rows ClickHouse has
  (offsets are committed after the insert); `rebase` gives a restarted
  broker everything the spool holds.
- `StallWatch`: what the truncation reads also tells when the stream app
  stopped consuming without crashing (messages wait uncommitted and no
  committed offset moves); `up` then restarts it, as after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from confluent_kafka import Consumer, KafkaException, TopicPartition

from ingest.publish import EventPublisher, Offsets
from ingest.spool import Spool
from lms_events.tasks import cancel_and_wait
from lms_events.topics import STREAM_APP_ID

log = structlog.get_logger(__name__)

TRUNCATE_INTERVAL_S = 1.0
COMMITTED_TIMEOUT_S = 5.0
# No committed offset moved this long while messages wait: the stream app is stalled. Well above
# a rebalance (a topic generation's switch takes ~3 s) and a slow ClickHouse insert.
STALL_S = 120.0


TopicFor = Callable[[str], str]


async def replay(
    spool: Spool, bootstrap: str, *, timeout_s: float, segments: list[int] | None = None, topic_for: TopicFor | None = None
) -> int:
    """Publish what `segments` (by default what the previous run left) hold; returns the number
    of messages. The spool keeps base topic names: `topic_for` maps them to the current generation."""
    recovered = await asyncio.to_thread(spool.recovered, segments)
    if not recovered:
        return 0
    publisher = EventPublisher(bootstrap, timeout_s=timeout_s, topic_for=topic_for)
    await publisher.start()
    try:
        for segment in recovered:
            spool.replayed(segment.segment, await publisher.publish(segment.messages))
    finally:
        await publisher.stop()
    messages = sum(len(segment.messages) for segment in recovered)
    log.info("spool_replayed", segments=len(recovered), messages=messages)
    return messages


class CommittedOffsets:
    """The stream app's committed offsets, read by a client that never joins its group."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": STREAM_APP_ID, "enable.auto.commit": False}
        )

    def read(self, partitions: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Blocking: call off the event loop."""
        if not partitions:
            return {}
        found = self._consumer.committed(
            [TopicPartition(topic, partition) for topic, partition in partitions], timeout=COMMITTED_TIMEOUT_S
        )
        return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}

    def close(self) -> None:
        self._consumer.close()


class StallWatch:
    """The stream app is stalled when messages it has not committed wait in the spool and not
    one committed offset moved for `stall_s` (seen once in a soak: consuming stopped, nothing
    crashed). Says so once per `stall_s`, so a restarted app gets that long to catch up."""

    def __init__(self, stall_s: float = STALL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._stall_s, self._clock = stall_s, clock
        self._committed: Offsets = {}
        self._since = clock()
        # At the last stall: each partition whose spooled messages wait, as "topic/partition
        # committed C, spooled up to P" (whether the app stopped or only its commits did).
        self.waiting: list[str] = []

    def observe(self, published: Offsets, committed: Offsets) -> bool:
        now = self._clock()
        waiting = [(partition, offset) for partition, offset in published.items() if committed.get(partition, 0) <= offset]
        if not waiting or committed != self._committed:
            self._committed, self._since = committed, now
            return False
        if now - self._since < self._stall_s:
            return False
        self._since = now
        self.waiting = [
            f"{topic}/{number} committed {committed.get((topic, number), 'none')}, spooled up to {offset}"
            for (topic, number), offset in sorted(waiting)
        ]
        return True


async def truncate_once(spool: Spool, committed: CommittedOffsets) -> tuple[Offsets, Offsets]:
    """Delete the segments the stream app has committed; returns what the spool held (the
    highest offset of each partition) and the committed offsets read for those partitions."""
    published = spool.published_offsets()
    offsets = await asyncio.to_thread(committed.read, set(published))
    gone = spool.truncate(offsets)
    await asyncio.to_thread(spool.delete, gone)
    return published, offsets


async def _truncate_forever(spool: Spool, committed: CommittedOffsets, watch: StallWatch, stalled: asyncio.Event) -> None:
    while True:
        await asyncio.sleep(TRUNCATE_INTERVAL_S)
        # A broker that does not answer just delays the deletion.
        with contextlib.suppress(KafkaException):
            if watch.observe(*await truncate_once(spool, committed)):
                stalled.set()


class StreamStalled(Exception):
    """The stream app consumes no more, though nothing crashed."""


class SpoolKeeper:
    """The spool of a running `up`: replayed at open, truncated behind the stream app meanwhile."""

    def __init__(
        self, spool: Spool, committed: CommittedOffsets, bootstrap: str, timeout_s: float, topic_for: TopicFor | None
    ) -> None:
        self.spool = spool
        self._committed = committed
        self._bootstrap, self._timeout_s, self._topic_for = bootstrap, timeout_s, topic_for
        self._stalled = asyncio.Event()
        self._watch = StallWatch()
        self._truncator = asyncio.create_task(_truncate_forever(spool, committed, self._watch, self._stalled))

    @classmethod
    async def open(
        cls, directory: Path, bootstrap: str, *, timeout_s: float, topic_for: TopicFor | None = None
    ) -> SpoolKeeper:
        spool = Spool.open(directory)
        try:
            await replay(spool, bootstrap, timeout_s=timeout_s, topic_for=topic_for)
        except BaseException:
            await spool.close()
            raise
        return cls(spool, CommittedOffsets(bootstrap), bootstrap, timeout_s, topic_for)

    def stalled(self) -> StreamStalled | None:
        """Once per stall the truncation found: why the stream app is to be restarted."""
        if not self._stalled.is_set():
            return None
        self._stalled.clear()
        waiting = self._watch.waiting
        return StreamStalled(
            f"no committed offset moved for {STALL_S:.0f} s while spooled messages wait in {len(waiting)} "
            f"partition(s): {'; '.join(waiting[:8])}"
        )

    async def rebase(self) -> None:
        """The broker restarted empty: everything the spool still holds goes to it again."""
        segments = await self.spool.rebase()
        await replay(self.spool, self._bootstrap, timeout_s=self._timeout_s, segments=segments, topic_for=self._topic_for)

    async def close(self, *, drained: bool = False) -> None:
        """Once the gateway has stopped. `drained`: ClickHouse has everything, so the spool empties;
        otherwise what it holds waits for the next run's replay."""
        if self._truncator.done():
            return
        await cancel_and_wait(self._truncator)
        await self.spool.close()
        try:
            if drained:
                await truncate_once(self.spool, self._committed)
                log.info("spool_emptied", segments_left=self.spool.segments)
        finally:
            await asyncio.to_thread(self._committed.close)
