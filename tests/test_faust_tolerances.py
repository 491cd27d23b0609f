"""What streams/rebalances.py makes Faust tolerate: a commit timer firing mid-rebalance, when aiokafka
holds no assignment, must not crash the consumer thread (that stopped consuming for good)."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer

from streams.app import GENERATIONS_STREAM_CHECK_S, create_stream_app


async def test_a_commit_without_an_assignment_is_skipped_not_a_crash(settings: Any, store: Any, bootstrap: str) -> None:
    # Faust's own consumer thread, driving a real aiokafka consumer that is subscribed but not
    # yet assigned: as mid-rebalance (committing through it raises IllegalStateError).
    thread = create_stream_app(settings, store).consumer._thread
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="mid-rebalance")
    await consumer.start()
    consumer.subscribe(["events.raw"])
    thread._consumer = consumer
    try:
        committed = await thread._commit({})
    finally:
        await consumer.stop()
    assert committed is False
    assert thread.crash_reason is None


def test_faust_s_stream_check_moves_out_of_the_way_only_under_topic_generations(settings: Any, store: Any) -> None:
    rotating = create_stream_app(settings, store, subscriptions={"events.raw": ["events.raw.g1"]})
    plain = create_stream_app(settings, store)
    assert rotating.conf.stream_processing_timeout == GENERATIONS_STREAM_CHECK_S
    assert plain.conf.stream_processing_timeout == 300.0, "a cluster's worker keeps Faust's default"
