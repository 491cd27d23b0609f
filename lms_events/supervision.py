"""`up` watches its embedded broker: Tansu keeps everything in memory, so when it dies
`up` starts it again on the same port, creates the topics, and publishes again what
the gateway's spool holds (what ClickHouse may not have yet).

Meanwhile /health says the broker is unavailable and the gateway answers 503
for what it cannot publish (librdkafka delivers what it still holds once the
broker is back). Then `on_restarted` replaces the stream worker by a fresh
one, which finds no committed offsets on the new broker and reads from the
start: the sinks make what ClickHouse already has a no-op.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from lms_events import embedded
from lms_events.errors import BrokerUnavailable, EmbeddedStartError
from lms_events.settings import Settings
from lms_events.spooling import SpoolKeeper
from lms_events.topics import ensure_topics

log = structlog.get_logger(__name__)

# How often the broker's process is looked at; also the pace of retries
# (and of their log lines) while it cannot be started.
WATCH_INTERVAL_S = 0.5


async def supervise_broker(
    broker: embedded.ManagedProcess,
    settings: Settings,
    keeper: SpoolKeeper | None,
    on_restarted: Callable[[], Awaitable[None]],
) -> None:
    assert settings.kafka_bootstrap_servers is not None
    restarted = False  # and not yet given the spool's messages again
    while True:
        await asyncio.sleep(WATCH_INTERVAL_S)
        try:
            if not broker.running:
                log.error("broker_died", returncode=broker.process.returncode)
                await broker.restart()
                restarted = True
            if restarted:
                await ensure_topics(settings, settings.kafka_bootstrap_servers)
                if keeper is not None:
                    await keeper.rebase()
                await on_restarted()
                restarted = False
                log.info("broker_restarted", port=broker.port)
        except (EmbeddedStartError, BrokerUnavailable) as exc:
            log.error("broker_restart_failed", error=str(exc))
