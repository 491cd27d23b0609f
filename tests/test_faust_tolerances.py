"""What streams/app.py makes Faust tolerate: a commit timer firing mid-rebalance, when aiokafka
holds no assignment, must not crash the consumer thread (that stopped consuming for good)."""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import AIOKafkaConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

from streams.app import GENERATIONS_STREAM_CHECK_S, _tolerate_commits_between_assignments, create_stream_app


class ConsumerThreadMidRebalance:
    """What `_commit` reads of Faust's consumer thread, while a rebalance is under way: a real
    aiokafka consumer that has no assignment (committing through it raises IllegalStateError)."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id="mid-rebalance")
        self.log = logging.getLogger(__name__)
        self.tp_last_committed_at: dict[Any, float] = {}
        self.crashed_with: BaseException | None = None

    def _ensure_consumer(self) -> AIOKafkaConsumer:
        return self.consumer

    def assignment(self) -> set[Any]:
        return set(self.consumer.assignment())

    async def crash(self, exc: BaseException) -> None:
        self.crashed_with = exc


async def test_a_commit_without_an_assignment_is_skipped_not_a_crash(bootstrap: str) -> None:
    _tolerate_commits_between_assignments()
    thread = ConsumerThreadMidRebalance(bootstrap)
    await thread.consumer.start()
    thread.consumer.subscribe(["events.raw"])  # subscribed, not yet assigned: as mid-rebalance
    try:
        committed = await AIOKafkaConsumerThread._commit(thread, {})  # type: ignore[arg-type]
    finally:
        await thread.consumer.stop()
    assert committed is False
    assert thread.crashed_with is None


def test_faust_s_stream_check_moves_out_of_the_way_only_under_topic_generations(settings: Any, store: Any) -> None:
    rotating = create_stream_app(settings, store, subscriptions={"events.raw": ["events.raw.g1"]})
    plain = create_stream_app(settings, store)
    assert rotating.conf.stream_processing_timeout == GENERATIONS_STREAM_CHECK_S
    assert plain.conf.stream_processing_timeout == 300.0, "a cluster's worker keeps Faust's default"
