"""Has the stream app stored everything Kafka holds? The clean stop of `up`
waits for it, because the embedded broker keeps messages only in memory."""

from __future__ import annotations

import asyncio
import time

import structlog
from aiokafka import AIOKafkaConsumer

from lms_events.lag import committed_and_ends, group_partitions
from lms_events.topics import PIPELINE_TOPICS, STREAM_APP_ID

log = structlog.get_logger(__name__)

DRAIN_TIMEOUT_S = 120.0
DRAIN_POLL_S = 0.2
DRAIN_FETCH_TIMEOUT_MS = 500


async def consumer_lag(bootstrap: str, group: str, topics: tuple[str, ...]) -> int:
    """Messages on `topics` that `group` has not committed yet (a lower bound; 0 = drained).

    The embedded Tansu reports a partition's end offset as one past the
    *first* record of its last record batch, so end offsets alone can call
    a partition drained while most of a batch is unread. So we also read:
    anything fetched at or after the committed offset is lag.
    """
    group_view = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await group_view.start()
    await reader.start()
    try:
        partitions = await group_partitions(group_view, topics)
        if not partitions:
            return 0
        committed, ends = await committed_and_ends(group_view, partitions)
        reported = sum(max(0, ends[tp] - committed[tp]) for tp in partitions)
        reader.assign(partitions)
        for tp in partitions:
            reader.seek(tp, committed[tp])
        fetched = await reader.getmany(timeout_ms=DRAIN_FETCH_TIMEOUT_MS)
        unread = sum(len(records) for records in fetched.values())
        return max(reported, unread)
    finally:
        await reader.stop()
        await group_view.stop()


async def wait_until_drained(
    bootstrap: str, timeout_s: float = DRAIN_TIMEOUT_S, topics: tuple[str, ...] = PIPELINE_TOPICS
) -> bool:
    """`topics`: the names the stream app reads (under the embedded broker, topic generations)."""
    deadline = time.monotonic() + timeout_s
    lag = -1
    while time.monotonic() < deadline:
        lag = await consumer_lag(bootstrap, STREAM_APP_ID, topics)
        if lag <= 0:
            log.info("drained", topics=topics)
            return True
        await asyncio.sleep(DRAIN_POLL_S)
    log.error("drain_timed_out", lag=lag, timeout_s=timeout_s)
    return False
