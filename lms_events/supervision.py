"""`up` watches the servers it started and starts a dead one again, with what it persisted.

- The broker: Tansu keeps everything in memory, so it comes back empty on
  the same port; `up` creates the current topic generation, publishes
  again what the gateway's spool holds (what ClickHouse may not have yet),
  then `on_restarted` replaces the stream worker by a fresh one, which finds
  no committed offsets on the new broker and reads from the start: the
  sinks make what ClickHouse already has a no-op.
- the stream worker: a Faust app whose fetcher crashed consumes no more; it
  is replaced by a fresh one, which goes on from the committed offsets. So
  is one that stalled without crashing (spooled messages wait uncommitted
  and no committed offset moved for 2 minutes: lms_events/spooling.py).
- valkey: it comes back on the same port from its append-only file in the
  data dir (dedup claims, consent, queues); the gateway's connection
  reconnects on its next command.

While the broker is down (dead, or back but not yet given the spool) the
gateway answers 503 at once (`BrokerSupervisor.down`) and /health says so.
Attempts that fail are retried with a growing pause, so a server that
cannot start does not fill the log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from lms_events import embedded, metrics
from lms_events.errors import BrokerUnavailable, EmbeddedStartError
from lms_events.generations import TopicGenerations
from lms_events.settings import Settings
from lms_events.spooling import SpoolKeeper
from lms_events.topics import ensure_topics

log = structlog.get_logger(__name__)

# How often a child process is looked at.
WATCH_INTERVAL_S = 0.5
# Failed restarts are retried after 0.5, 1, 2, 4, then every 5 s.
MAX_RETRY_INTERVAL_S = 5.0


async def _watch(name: str, process: embedded.ManagedProcess, recover: Callable[[], Awaitable[None]]) -> None:
    """Forever: when `process` has died, `recover` (restart it and whatever follows) until that succeeds."""
    pause = WATCH_INTERVAL_S
    failing = False
    while True:
        await asyncio.sleep(pause)
        if process.running and not failing:
            continue
        if not failing:
            log.error(f"{name}_died", returncode=process.process.returncode)
        try:
            await recover()
        except (EmbeddedStartError, BrokerUnavailable) as exc:
            failing = True
            log.error(f"{name}_restart_failed", error=str(exc), retry_in_s=pause)
            pause = min(pause * 2, MAX_RETRY_INTERVAL_S)
            continue
        failing, pause = False, WATCH_INTERVAL_S
        metrics.SUPERVISION.labels(name, "died").inc()
        log.info(f"{name}_restarted", port=process.port, pid=process.process.pid)


class BrokerSupervisor:
    def __init__(
        self,
        broker: embedded.ManagedProcess,
        settings: Settings,
        keeper: SpoolKeeper | None,
        generations: TopicGenerations,
        on_restarted: Callable[[], Awaitable[None]],
    ) -> None:
        assert settings.kafka_bootstrap_servers is not None
        self.broker, self.settings, self.keeper = broker, settings, keeper
        self.generations, self.on_restarted = generations, on_restarted
        # Back up but not yet given what the spool holds.
        self._recovering = False
        # Restarted, its topic generations not yet reset.
        self._empty = False

    @property
    def down(self) -> bool:
        """Known not to take publishes now: the gateway answers 503 without waiting."""
        return self._recovering or not self.broker.running

    async def _recover(self) -> None:
        assert self.settings.kafka_bootstrap_servers is not None
        self._recovering = True
        if not self.broker.running:
            # At once: a rotation under way gives up (its broker is down) and lets go of the lock.
            await self.broker.restart()
            self._empty = True
        async with self.generations.lock:
            if self._empty:
                self.generations.restart()
                self._empty = False
            await ensure_topics(self.settings, self.settings.kafka_bootstrap_servers, self.generations.all_topics())
            if self.keeper is not None:
                await self.keeper.rebase()
            self._recovering = False
            # The fresh stream worker reads what the spool gave the broker (and what comes next).
            await self.on_restarted()

    async def run(self) -> None:
        await _watch("broker", self.broker, self._recover)


async def supervise_valkey(valkey: embedded.ManagedProcess) -> None:
    await _watch("valkey", valkey, lambda: embedded.restart_valkey(valkey))


async def supervise_stream_worker(
    crashed: Callable[[], BaseException | None], restart: Callable[[], Awaitable[None]], lock: asyncio.Lock
) -> None:
    """Replaces a stream worker that crashed, stalled or could not start, with a growing pause
    between failed attempts."""
    pause = WATCH_INTERVAL_S
    while True:
        await asyncio.sleep(pause)
        if crashed() is None:
            continue
        async with lock:  # not in the middle of a topic generation's change
            # Whoever held the lock (a broker restart) may have replaced it meanwhile.
            reason = crashed()
            if reason is None:
                continue
            log.error("stream_worker_crashed", error=repr(reason))
            try:
                await restart()
            except EmbeddedStartError as exc:
                log.error("stream_worker_restart_failed", error=str(exc), retry_in_s=pause)
                pause = min(pause * 2, MAX_RETRY_INTERVAL_S)
                continue
        pause = WATCH_INTERVAL_S
        metrics.SUPERVISION.labels("stream_worker", type(reason).__name__).inc()
        log.info("stream_worker_restarted")
