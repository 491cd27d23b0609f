"""The stream app's consumer lag, for /health and /metrics.

Per pipeline topic: end offset - committed offset of the stream app's
group, summed over partitions. On the embedded Tansu this is a lower
bound (its end offset counts a record batch as one record; the drain on
stop reads the records instead, lms_events/drain.py). Reading it opens a
short-lived client, so the answer is kept CACHE_S: a /health poll loop or
a scrape every few seconds costs one read, not one each.
"""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from lms_events.metrics import CONSUMER_LAG
from collections.abc import Callable

from lms_events.topics import PIPELINE_TOPICS, STREAM_APP_ID, base_topic

CACHE_S = 5.0
READ_TIMEOUT_S = 2.0


async def group_partitions(consumer: AIOKafkaConsumer, topics: tuple[str, ...]) -> list[TopicPartition]:
    await consumer.topics()
    return [TopicPartition(topic, p) for topic in topics for p in sorted(consumer.partitions_for_topic(topic) or ())]


async def committed_and_ends(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """The group's committed offset (0 when none) and the end offset of each partition."""
    committed = {tp: (await consumer.committed(tp)) or 0 for tp in partitions}
    ends = await consumer.end_offsets(partitions) if partitions else {}
    return committed, ends


async def lag_by_topic(bootstrap: str, group: str = STREAM_APP_ID, topics: tuple[str, ...] = PIPELINE_TOPICS) -> dict[str, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, request_timeout_ms=int(READ_TIMEOUT_S * 1000)
    )
    try:  # started inside: a read cut short by its timeout still closes the client
        await consumer.start()
        partitions = await group_partitions(consumer, topics)
        committed, ends = await committed_and_ends(consumer, partitions)
    finally:
        await consumer.stop()
    # by base topic: under topic generations (the embedded broker) one base is read in several
    # topics, and a label per generation would grow the metric's series without end
    lag = dict.fromkeys(map(base_topic, topics), 0)
    for tp in partitions:
        lag[base_topic(tp.topic)] += max(0, ends[tp] - committed[tp])
    return lag


class LagReader:
    """`lag_by_topic`, read at most once per CACHE_S; concurrent askers share one read,
    and a failed read is remembered as long (a broker away costs one timeout, not one each)."""

    def __init__(self, bootstrap: str, topics: Callable[[], tuple[str, ...]] = lambda: PIPELINE_TOPICS) -> None:
        self._bootstrap = bootstrap
        # what the stream app consumes now (generations move under the embedded broker)
        self._topics = topics
        self._read_at = float("-inf")
        self._outcome: dict[str, int] | BaseException = {}
        self._lock = asyncio.Lock()

    async def by_topic(self) -> dict[str, int]:
        """Raises what the read raised (a broker away: TimeoutError, KafkaError)."""
        async with self._lock:
            if time.monotonic() - self._read_at > CACHE_S:
                try:
                    self._outcome = await asyncio.wait_for(lag_by_topic(self._bootstrap, topics=self._topics()), READ_TIMEOUT_S)
                except Exception as exc:  # noqa: BLE001 - kept and raised to every asker until the next read
                    self._outcome = exc
                self._read_at = time.monotonic()
            if isinstance(self._outcome, BaseException):
                raise self._outcome
            return self._outcome

    async def probe(self) -> None:
        """Scrape-time probe of /metrics (lms_events.metrics.add_probe)."""
        for topic, lag in (await self.by_topic()).items():
            CONSUMER_LAG.labels(topic).set(lag)
