"""The report scheduler: turns due occurrences of enabled schedules into
report jobs, one active instance at a time.

    lock      reports:scheduler:lock, SET NX PX with a random token; the holder
              renews it every tick (tick < lifetime / 3), others wait for its
              expiry (PTTL) and take over: a dead holder is replaced within the
              lock's lifetime
    tick      every enabled schedule: its occurrences after max(last fired due,
              activeSince) up to now (reports/recurrence.py); the latest one fires
    fire      claim reports:schedule-run:<schedule>:<due ms> (SET NX), create the
              job (id derived from schedule and due, so a retry finds it), record
              the run; a due run is enqueued once even if two schedulers overlap
    catch-up  after downtime only the latest missed occurrence runs, once
              (trigger catch-up, `missed` counts the skipped ones): a schedule
              does not flood the queue with a day of stale reports

The clock is an input (`clock()`: an aware UTC datetime), so tests move
time by hand; the lock lives in Redis time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import msgspec
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from analytics.params import iso_z
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import ClientError, StorageError
from reports.ledger import Ledger, StoredJob
from reports.plan_models import ReportSchedule
from reports.queue import ReportQueue
from reports.schedule_runs import CATCH_UP, MANUAL, SCHEDULED, Run, RunLog
from reports.schedules import ScheduleStore, job_request, owner_scope, recurrence, schedule_of
from reports.submit import new_job, submit

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
LOCK_KEY = "reports:scheduler:lock"
CLAIM_KEY = "reports:schedule-run:{schedule_id}:{due_ms}"
LOCK_LIFETIME_S = 30.0
TICK_S = 5.0
# A claim outlives a scheduler that died between claiming and recording (then the next one redoes
# it, finding the job by its id); a done claim is kept this long, for overlapping schedulers.
CLAIM_S = LOCK_LIFETIME_S
DONE_S = 7 * 24 * 3600.0
# Later than this after its due instant, a run is a catch-up, not on time.
ON_TIME = timedelta(minutes=2)
# Scheduled jobs' ids: uuid5 of (schedule, due instant) under this namespace.
JOB_NAMESPACE = uuid.UUID("0b9e6d1c-5f0e-4a8e-9c55-7f3f4d1e2a10")

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def system_clock() -> datetime:
    return datetime.now(UTC)


class SchedulerLock:
    """Leadership: one token holds LOCK_KEY; it must renew within `lifetime_s` or lose it."""

    def __init__(self, redis: Redis, lifetime_s: float = LOCK_LIFETIME_S, key: str = LOCK_KEY) -> None:
        self.redis = redis
        self.key = key
        self.lifetime_ms = int(lifetime_s * 1000)
        self.token = uuid.uuid4().hex
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def hold(self) -> bool:
        """Renew the lock if this instance holds it, else try to take it; whether it is ours now."""
        if await self._renew(keys=[self.key], args=[self.token, self.lifetime_ms]):
            return True
        return bool(await self.redis.set(self.key, self.token, nx=True, px=self.lifetime_ms))

    async def remaining_s(self) -> float:
        """How long the current holder's lock lasts without a renewal."""
        ttl = await self.redis.pttl(self.key)
        return max(ttl, 0) / 1000

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.token])


@dataclass(frozen=True)
class Fired:
    schedule_id: str
    due: datetime
    job_id: str
    trigger: str
    missed: int


def scheduled_job_id(schedule_id: str, due: datetime) -> str:
    return str(uuid.uuid5(JOB_NAMESPACE, f"{schedule_id}@{iso_z(due)}"))


async def create_run(
    ledger: Ledger, queue: ReportQueue, runs: RunLog, schedule: ReportSchedule, owner: Scope,
    *, due: datetime, trigger: str, missed: int = 0, job_id: str | None = None, now: datetime | None = None,
) -> StoredJob:  # fmt: skip
    """The schedule's job (submitted unless it already exists) and its run record."""
    # A scheduled job that exists already (its scheduler died before recording the run) has a status in Redis.
    existing = job_id is not None and await ledger.status(job_id) is not None
    job_id = job_id or str(uuid.uuid4())
    stored = await ledger.find(schedule.organization_id, job_id) if existing else None
    if stored is None:
        fresh = new_job(job_request(schedule, schedule.id), owner, schedule.organization_id)
        fresh = StoredJob(msgspec.structs.replace(fresh.job, id=job_id), fresh.requester_role, fresh.requester_departments, 1)
        stored = await submit(ledger, queue, fresh)
    run = Run(schedule.organization_id, schedule.id, due, job_id, trigger, missed, tuple(schedule.recipients), now or due)
    await runs.record(run)
    return stored


class Scheduler:
    def __init__(
        self, store: ClickHouseStore, redis: Redis, *, clock: Clock = system_clock, lock_s: float = LOCK_LIFETIME_S,
        tick_s: float = TICK_S, lock_key: str = LOCK_KEY, organization_id: str | None = None,
    ) -> None:  # fmt: skip
        """`organization_id`: only that organization's schedules (a scheduler per tenant; tests)."""
        if tick_s * 3 > lock_s:
            raise ValueError(f"the scheduler ticks (and renews its lock) at most every lock_s/3; got tick {tick_s}, lock {lock_s}")
        self.redis = redis
        self.clock = clock
        self.tick_s = tick_s
        self.lock = SchedulerLock(redis, lock_s, lock_key)
        self.organization_id = organization_id
        self.ledger = Ledger(store, redis)
        self.queue = ReportQueue(redis)
        self.schedules = ScheduleStore(store)
        self.runs = RunLog(store)

    async def step(self) -> list[Fired] | None:
        """One round: hold the lock, then fire what is due; None when another instance leads."""
        if not await self.lock.hold():
            return None
        return await self.tick()

    async def tick(self) -> list[Fired]:
        """Fire every due occurrence (the latest one per schedule) as of clock()."""
        now = self.clock()
        last = await self.runs.last_dues()
        fired: list[Fired] = []
        renewed = time.monotonic()
        for row in await self.schedules.enabled(self.organization_id):
            if time.monotonic() - renewed > self.tick_s:
                # a long tick (many runs due after downtime) keeps its lock, or stops when it lost it
                if not await self.lock.hold():
                    log.warning("report_scheduler_lost_lock", fired=len(fired))
                    return fired
                renewed = time.monotonic()
            schedule = schedule_of(row)
            try:
                recurring = recurrence(schedule)
            except ClientError:
                continue  # saved before a rule changed (a timezone gone from tzdata): left as it is
            after = max(filter(None, (last.get((schedule.organization_id, schedule.id)), _at(schedule.active_since))))
            upcoming = recurring.next_after(after)
            if upcoming is None or upcoming > now:
                continue
            due, missed = recurring.latest(after, now)
            if due is None:
                continue
            trigger = SCHEDULED if missed == 0 and now - due <= ON_TIME else CATCH_UP
            done = await self._fire(schedule, owner_scope(row), due, trigger, missed, now)
            if done is not None:
                fired.append(done)
        return fired

    async def _fire(
        self, schedule: ReportSchedule, owner: Scope, due: datetime, trigger: str, missed: int, now: datetime
    ) -> Fired | None:
        claim = CLAIM_KEY.format(schedule_id=schedule.id, due_ms=int(due.timestamp() * 1000))
        if not await self.redis.set(claim, self.lock.token, nx=True, px=int(CLAIM_S * 1000)):
            return None  # fired already, or being fired by an overlapping scheduler
        job_id = scheduled_job_id(schedule.id, due)
        await create_run(
            self.ledger, self.queue, self.runs, schedule, owner, due=due, trigger=trigger, missed=missed, job_id=job_id, now=now
        )
        await self.redis.set(claim, "done", px=int(DONE_S * 1000))
        log.info("report_schedule_fired", schedule_id=schedule.id, job_id=job_id, due=iso_z(due), trigger=trigger, missed=missed)
        return Fired(schedule.id, due, job_id, trigger, missed)

    async def run(self, stop: asyncio.Event) -> None:
        """Lead or wait, until `stop`; a clean stop releases the lock (a killed one lets it expire)."""
        log.info("report_scheduler_started", token=self.lock.token[:8])
        while not stop.is_set():
            wait = self.tick_s
            try:
                if await self.step() is None:
                    # not the leader: look again when the holder's lock would expire
                    wait = min(self.tick_s, max(await self.lock.remaining_s(), 0.01))
            except (RedisError, StorageError) as exc:
                log.warning("report_scheduler_retrying", error_type=type(exc).__name__)
            except Exception:  # noqa: BLE001 - one bad schedule or bug must not end scheduling in this process
                log.exception("report_scheduler_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
        with contextlib.suppress(RedisError):
            await self.lock.release()
        log.info("report_scheduler_stopped")


async def manual_run(ledger: Ledger, queue: ReportQueue, runs: RunLog, schedule: ReportSchedule, owner: Scope) -> StoredJob:
    """Run now: a job at once, recorded as a manual run (the schedule's timing is unchanged)."""
    now = system_clock()
    return await create_run(ledger, queue, runs, schedule, owner, due=now, trigger=MANUAL, now=now)


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
