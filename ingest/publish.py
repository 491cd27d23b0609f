"""Publish sub-batches to Kafka with acks=all; the gateway answers only after.

The producer is librdkafka (confluent-kafka): it batches, encodes and
sends on its own threads without the GIL, where aiokafka spent ~190 µs
of the event loop's CPU per request in Python protocol encoding (measured
on Tansu, 67 KB sub-batch + outcome counts per request: 255 -> 68 µs of
process CPU). Delivery reports come back on one poller thread and are
handed to the event loop in bulk.

librdkafka reconnects by itself, so a gateway that came up while Kafka
was down serves 503s until the broker is back. Anything the broker did
not acknowledge within the publish timeout is `BrokerUnavailable` -> 503.
With a spool (the embedded broker, see ingest/spool.py) each publish is
also appended there, at the same time as it goes to Kafka, and returns
only once both hold it; the offsets Kafka gave the messages tell the
spool when the stream app has committed them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from lms_events.errors import BrokerUnavailable

if TYPE_CHECKING:
    from ingest.spool import Spool

log = structlog.get_logger(__name__)

# A 1 MiB batch plus the envelope fields the gateway adds fits comfortably.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# Room for many sub-batch messages in one record batch per partition, so
# concurrent requests share produce round trips.
MAX_BATCH_BYTES = 1024 * 1024
LINGER_MS = 2
# How long the poller thread blocks waiting for delivery reports; it only
# bounds how fast `stop` is, reports wake it at once.
POLL_INTERVAL_S = 0.1
# librdkafka decides a delivery's fate within the publish timeout; waiting
# a little longer than that means the client is never told 503 for a
# message that was then delivered.
DELIVERY_GRACE_S = 1.0
HEALTH_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class KafkaMessage:
    topic: str
    key: bytes
    value: bytes


# (topic, partition) -> the highest offset a publish got there.
Offsets = dict[tuple[str, int], int]


@dataclass(frozen=True, slots=True)
class EmbeddedBroker:
    """What `up` tells the gateway about the broker it runs: where each base topic
    goes now (topic generations) and whether the broker is known to be dead."""

    topic_for: Callable[[str], str]
    down: Callable[[], bool]
    # the topics the stream app consumes now, for its lag in /health and /metrics
    pipeline_topics: Callable[[], tuple[str, ...]]


class _DeliveryReports:
    """Carries librdkafka's delivery callbacks (poller thread) to futures on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._reports: list[tuple[asyncio.Future[Offsets], KafkaError | Offsets]] = []

    def callback_for(self, future: asyncio.Future[Offsets], messages: int):  # type: ignore[no-untyped-def]
        """The delivery callback of `messages` messages that share `future`: it fails at
        the first failed delivery and succeeds once all were delivered, with their offsets."""
        remaining = messages
        offsets: Offsets = {}

        def delivered(error: KafkaError | None, message: Message) -> None:
            nonlocal remaining
            with self._lock:
                remaining -= 1
                if error is not None:
                    self._reports.append((future, error))
                    return
                partition = (message.topic(), message.partition())
                offsets[partition] = max(offsets.get(partition, -1), message.offset())
                if remaining == 0:
                    self._reports.append((future, offsets))

        return delivered

    def hand_over(self) -> None:
        """Poller thread: one loop wake-up for all reports of a poll."""
        with self._lock:
            if not self._reports:
                return
            reports, self._reports = self._reports, []
        self._loop.call_soon_threadsafe(_resolve, reports)


def _resolve(reports: list[tuple[asyncio.Future[Offsets], KafkaError | Offsets]]) -> None:
    for future, outcome in reports:
        if future.done():
            continue
        if isinstance(outcome, KafkaError):
            future.set_exception(KafkaException(outcome))
        else:
            future.set_result(outcome)


def _same_topic(topic: str) -> str:
    return topic


class EventPublisher:
    def __init__(
        self,
        bootstrap_servers: str,
        *,
        timeout_s: float,
        spool: Spool | None = None,
        topic_for: Callable[[str], str] | None = None,
        broker_down: Callable[[], bool] | None = None,
    ) -> None:
        """`topic_for`: the topic a message for a base topic goes to now (the embedded broker's
        generations, lms_events/generations.py); the spool keeps the base name. `broker_down`:
        true while `up` knows its broker is dead, so a publish fails at once instead of after
        the timeout."""
        self._bootstrap = bootstrap_servers
        self._timeout_s = timeout_s
        self._spool = spool
        self._topic_for = topic_for or _same_topic
        self._broker_down = broker_down or (lambda: False)
        self._producer: Producer | None = None
        self._reports: _DeliveryReports | None = None
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()

    async def start(self) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": self._bootstrap,
                "acks": "all",
                # Tansu has no InitProducerId; duplicates from retries are removed downstream.
                "enable.idempotence": False,
                # Under topic generations (`topic_for`) `up` creates every topic; left on, librdkafka's
                # refresh of the topics it once produced to re-created deleted generations (empty).
                "allow.auto.create.topics": self._topic_for is _same_topic,
                "linger.ms": LINGER_MS,
                "batch.size": MAX_BATCH_BYTES,
                "message.max.bytes": MAX_MESSAGE_BYTES,
                "message.timeout.ms": int(self._timeout_s * 1000),
                "retry.backoff.ms": 100,
                # librdkafka's own lines (connection failures...) through the stdlib -> structlog bridge.
                "logger": logging.getLogger("librdkafka"),
            }
        )
        self._reports = _DeliveryReports(asyncio.get_running_loop())
        self._stopping.clear()
        self._poller = threading.Thread(target=self._poll, name="kafka-delivery-reports", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        assert self._producer is not None and self._reports is not None
        while not self._stopping.is_set():
            self._producer.poll(POLL_INTERVAL_S)
            self._reports.hand_over()

    async def publish(self, messages: Sequence[KafkaMessage]) -> Offsets:
        """Return once Kafka acknowledged every message (with their offsets) and the spool,
        if any, has them on disk; or raise BrokerUnavailable."""
        if not messages:
            return {}
        if self._broker_down():
            raise BrokerUnavailable("the embedded broker is down; it is being restarted")
        if self._spool is None:
            return await self._acknowledged(messages)
        durable = self._spool.append(messages)
        try:
            offsets = await self._acknowledged(messages)
            self._spool.published(await durable, offsets)
        except BaseException:
            self._spool.abandon(durable)
            raise
        return offsets

    async def _acknowledged(self, messages: Sequence[KafkaMessage]) -> Offsets:
        assert self._producer is not None and self._reports is not None, "start() the publisher first"
        acknowledged: asyncio.Future[Offsets] = asyncio.get_running_loop().create_future()
        delivered = self._reports.callback_for(acknowledged, len(messages))
        try:
            for message in messages:
                self._producer.produce(self._topic_for(message.topic), message.value, message.key, on_delivery=delivered)
            async with asyncio.timeout(self._timeout_s + DELIVERY_GRACE_S):
                return await acknowledged
        except (TimeoutError, KafkaException, BufferError) as exc:
            acknowledged.cancel()
            log.warning("kafka_publish_failed", error=repr(exc), messages=len(messages))
            raise BrokerUnavailable(f"Kafka did not acknowledge the batch: {exc!r}") from exc

    async def healthy(self) -> bool:
        if self._producer is None or self._broker_down():
            return False
        try:
            await asyncio.to_thread(self._producer.list_topics, timeout=HEALTH_TIMEOUT_S)
            return True
        except KafkaException:
            return False

    async def stop(self) -> None:
        if self._producer is None:
            return
        # Whatever is still queued gets its chance (and its caller an answer) before we go.
        await asyncio.to_thread(self._producer.flush, self._timeout_s)
        self._stopping.set()
        if self._poller is not None:
            await asyncio.to_thread(self._poller.join)
        if self._reports is not None:
            self._reports.hand_over()
        self._producer = None
