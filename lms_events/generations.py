"""Topic generations: how `up` keeps the embedded broker's memory bounded.

Tansu (`memory://`) keeps every message until its topic is deleted: it
ignores retention and panics on DeleteRecords, but DeleteTopics frees the
memory. So under the embedded broker every topic that grows with traffic
(ROTATED_TOPICS: what the gateway publishes and the stream app reads,
bad rows included) exists in generations, `events.raw.g1`, `events.raw.g2`, ...:

- the gateway publishes to the current generation (`topic_for`); the spool
  records the base name, so a replay goes to whatever is current then;
- every `topic_rotation_s` `up` opens the next generation: creates its
  topics, adds them to the stream app's subscription, then switches the
  gateway to it (`open_next`);
- an older generation goes (`retire`) once no publish to it can still be
  under way, no spool segment holds a message of it, and the stream app's
  group has committed everything it holds: it leaves the subscription
  first, then its topics are deleted.

What the stream app publishes for others (NOTIFIED_TOPICS) has generations
too: `analytics.events`, an AnalyticsUpdated per changed entity and window
(measured: ~700 messages/s at 1,000 events/s from 2,000 learners, more than
`events.raw`), read by followers from their end without a group (the API's
cache invalidation, by pattern), and `alerts`, one per error event. A
generation of them is created one rotation ahead, so a follower has found
it before anything is published there, and is deleted with the rest of its
generation: a follower reads by pattern (as ANALYTICS_EVENTS_PATTERN does) and keeps up.

What does not rotate grows with the roster, not with traffic: the domain
topics (one message per user, course, class or enrollment change) and the
reference tables' changelogs.

Faust has no working pattern subscription (its aiokafka driver subscribes
to names), so the stream app's topics share the lists in `subscriptions`
and a change is a resubscription of the running app (`_UpStreams` in
up.py). With KAFKA_BOOTSTRAP_SERVERS nothing rotates: names stay
as they are and the cluster's retention applies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from lms_events import metrics
from lms_events.drain import consumer_lag
from lms_events.errors import BrokerUnavailable
from lms_events.settings import Settings
from lms_events.topics import (
    ALERTS,
    ALL_TOPICS,
    ANALYTICS_EVENTS,
    CONSENT_RECORDS,
    INTAKE_OUTCOMES,
    PIPELINE_TOPICS,
    RAW_EVENTS,
    REJECTED_EVENTS,
    STREAM_APP_ID,
    ensure_topics,
)

log = structlog.get_logger(__name__)

# What grows with traffic and the stream app reads: a message per request (events, outcomes),
# per request with bad events, per consent change.
ROTATED_TOPICS = (RAW_EVENTS, INTAKE_OUTCOMES, REJECTED_EVENTS, CONSENT_RECORDS)
# Read from their end by followers outside any group; ReportGenerated (rare) stays on the base topic.
NOTIFIED_TOPICS = (ANALYTICS_EVENTS, ALERTS)
# What a follower of analytics.events subscribes to: the base topic and its generations.
ANALYTICS_EVENTS_PATTERN = r"^analytics\.events(\.g\d+)?$"
CHECK_INTERVAL_S = 1.0
# How long the stream app may take to pick up a changed subscription (a rebalance).
RESUBSCRIBE_TIMEOUT_S = 60.0
ADMIN_TIMEOUT_S = 15.0


def generation_topic(base: str, generation: int) -> str:
    return f"{base}.g{generation}"


class TopicGenerations:
    """The generations that exist, and the topic names each side uses. Loop thread only."""

    def __init__(self, *, rotating: bool) -> None:
        self.rotating = rotating
        self.current = 1
        self.opened_at = time.monotonic()
        # generation -> when the gateway stopped publishing to it (None: current)
        self.live: dict[int, float | None] = {1: None}
        # base -> the names the stream app reads; its Faust topics share these lists.
        self.subscriptions: dict[str, list[str]] = {
            base: [generation_topic(base, 1)] for base in (ROTATED_TOPICS if rotating else ())
        }
        # Held by whoever changes the generations (rotation, broker restart).
        self.lock = asyncio.Lock()

    def topic_for(self, base: str) -> str:
        """Where a message meant for `base` goes now (the gateway's, the stream app's notifications)."""
        if base in self.subscriptions or (self.rotating and base in NOTIFIED_TOPICS):
            return generation_topic(base, self.current)
        return base

    def topics_of(self, generation: int) -> tuple[str, ...]:
        notified = NOTIFIED_TOPICS if self.rotating else ()
        return tuple(generation_topic(base, generation) for base in (*self.subscriptions, *notified))

    def notified_ahead(self) -> tuple[str, ...]:
        """The next generation's notification topics, created a rotation ahead."""
        return tuple(generation_topic(base, max(self.live) + 1) for base in NOTIFIED_TOPICS) if self.rotating else ()

    def _mapped(self, topics: tuple[str, ...]) -> tuple[str, ...]:
        names: list[str] = []
        for base in topics:
            names += self.subscriptions.get(base, [base])
        return tuple(names)

    def pipeline_topics(self) -> tuple[str, ...]:
        """What the stream app consumes (the drain on stop waits for these)."""
        return self._mapped(PIPELINE_TOPICS)

    def all_topics(self) -> tuple[str, ...]:
        """What must exist on the broker."""
        notified = NOTIFIED_TOPICS if self.rotating else ()
        live = tuple(generation_topic(base, g) for g in self.live for base in notified)
        return (*self._mapped(ALL_TOPICS), *live, *self.notified_ahead())

    def open(self, generation: int) -> None:
        self.live[generation] = None
        for base, names in self.subscriptions.items():
            names.append(generation_topic(base, generation))

    def switch(self, generation: int) -> None:
        self.live[self.current] = time.monotonic()
        self.current, self.opened_at = generation, time.monotonic()

    def unsubscribe(self, generation: int) -> None:
        for base, names in self.subscriptions.items():
            name = generation_topic(base, generation)
            if name in names:
                names.remove(name)

    def restart(self) -> None:
        """The broker restarted empty: one new generation, nothing else exists."""
        self.current += 1
        self.opened_at = time.monotonic()
        self.live = {self.current: None}
        for base, names in self.subscriptions.items():
            names[:] = [generation_topic(base, self.current)]


class Subscriber(Protocol):
    """The running stream app, as rotation sees it (`_UpStreams` in lms_events/up.py)."""

    def resubscribe(self) -> None: ...

    def assigned_topics(self) -> set[str] | None:
        """Topics of the current assignment; None while no stream app is running or it rebalances."""

    def crashed(self) -> BaseException | None:
        """Why the stream app consumes no more, if it does not: then no subscription change can
        take effect, and the rotation lets go of the lock for its replacement."""


async def _until(
    condition: Callable[[], bool], poke: Callable[[], None], timeout_s: float, abort: Callable[[], bool]
) -> bool:
    """Poke (resubscribe) until `condition` holds: Faust drops a subscription change made while it
    rebalances. False at the deadline, or at once when `abort` (the broker or the app died)."""
    deadline = time.monotonic() + timeout_s
    poked = 0.0
    while not condition():
        if time.monotonic() > deadline or abort():
            return False
        if time.monotonic() - poked > RESUBSCRIBE_TIMEOUT_S / 6:
            poke()
            poked = time.monotonic()
        await asyncio.sleep(0.1)
    return True


async def delete_topics(bootstrap: str, topics: tuple[str, ...]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(ADMIN_TIMEOUT_S * 1000))
    try:
        await asyncio.wait_for(admin.start(), ADMIN_TIMEOUT_S)
        await admin.delete_topics(list(topics))
    except (TimeoutError, KafkaError, OSError) as exc:
        raise BrokerUnavailable(f"cannot delete topics {topics} on {bootstrap}: {exc!r}") from exc
    finally:
        await admin.close()


class Rotation:
    """Opens a new generation every `topic_rotation_s` and deletes the finished ones."""

    def __init__(
        self,
        generations: TopicGenerations,
        settings: Settings,
        subscriber: Subscriber,
        spooled_topics: Callable[[], set[str]],
        *,
        publish_window_s: float,
        broker_down: Callable[[], bool],
    ) -> None:
        assert settings.kafka_bootstrap_servers is not None
        self.generations, self.settings, self.subscriber = generations, settings, subscriber
        self._bootstrap = settings.kafka_bootstrap_servers
        self._spooled_topics = spooled_topics
        # After the switch, a publish to the old generation may still be delivered this long.
        self._publish_window_s = publish_window_s
        self._broker_down = broker_down

    def _given_up(self) -> bool:
        return self._broker_down() or self.subscriber.crashed() is not None

    async def open_next(self) -> int:
        generations = self.generations
        following = max(generations.live) + 1
        await ensure_topics(self.settings, self._bootstrap, generations.topics_of(following))
        generations.open(following)
        await ensure_topics(self.settings, self._bootstrap, generations.notified_ahead())
        wanted = {generation_topic(base, following) for base in generations.subscriptions}
        # Subscribed before the gateway publishes there, so the drain never misses it.
        subscribed = await _until(
            lambda: wanted <= (self.subscriber.assigned_topics() or set()),
            self.subscriber.resubscribe,
            RESUBSCRIBE_TIMEOUT_S,
            self._given_up,
        )
        if self._broker_down():
            raise BrokerUnavailable("the broker died while a generation opened")
        if not subscribed:
            log.warning("generation_subscribe_slow", generation=following)
        generations.switch(following)
        metrics.GENERATIONS.labels("opened").inc()
        log.info("generation_opened", generation=following, topics=list(generations.topics_of(following)))
        return following

    async def finished(self, generation: int) -> bool:
        closed_at = self.generations.live.get(generation)
        if closed_at is None or time.monotonic() - closed_at < self._publish_window_s:
            return False
        consumed = tuple(generation_topic(base, generation) for base in self.generations.subscriptions)
        if self._spooled_topics() & set(consumed):
            return False
        return await consumer_lag(self._bootstrap, STREAM_APP_ID, consumed) == 0

    async def retire(self, generation: int) -> bool:
        consumed = {generation_topic(base, generation) for base in self.generations.subscriptions}
        self.generations.unsubscribe(generation)
        left = await _until(
            lambda: not consumed & (self.subscriber.assigned_topics() or consumed),
            self.subscriber.resubscribe,
            RESUBSCRIBE_TIMEOUT_S,
            self._given_up,
        )
        if not left:
            log.warning("generation_unsubscribe_slow", generation=generation)
            return False
        topics = set(self.generations.topics_of(generation))
        await delete_topics(self._bootstrap, tuple(sorted(topics)))
        del self.generations.live[generation]
        metrics.GENERATIONS.labels("deleted").inc()
        log.info("generation_deleted", generation=generation, topics=sorted(topics))
        return True

    async def step(self) -> None:
        generations = self.generations
        async with generations.lock:
            if self.subscriber.assigned_topics() is None:
                return  # no stream app running (a broker restart replaces it), or rebalancing
            for generation in sorted(generations.live):
                if generation != generations.current and await self.finished(generation):
                    await self.retire(generation)
            if time.monotonic() - generations.opened_at >= self.settings.topic_rotation_s:
                await self.open_next()

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            try:
                await self.step()
            except (BrokerUnavailable, KafkaError, OSError) as exc:
                # A broker that does not answer just delays the rotation (supervision restarts it).
                log.warning("generation_rotation_failed", error=repr(exc))
            except Exception:  # a bug here must not end the rotation silently: say so, try again
                log.exception("generation_rotation_failed")


def subscribed_topic(app: Any, base: str, subscriptions: dict[str, list[str]] | None, **options: Any) -> Any:
    """`app.topic(base)`, or, when `base` rotates, a topic reading the generations in
    `subscriptions[base]`: Faust's topics (and the agents' clones) share that list."""
    topic = app.topic(base, **options)
    if subscriptions and base in subscriptions:
        topic.topics = subscriptions[base]
    return topic


class TopicsByName:
    """A stream app's topics to publish to by name, the name changing with the generation."""

    def __init__(self, app: Any, base: str, topic_for: Callable[[str], str] | None, **options: Any) -> None:
        self._app, self._base, self._options = app, base, options
        self._topic_for = topic_for or (lambda name: name)
        self._topics: dict[str, Any] = {}

    def current(self) -> Any:
        name = self._topic_for(self._base)
        topic = self._topics.get(name)
        if topic is None:
            self._topics = {name: self._app.topic(name, **self._options)}  # the old generation's goes
            topic = self._topics[name]
        return topic
