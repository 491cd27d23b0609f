"""The report scheduler on the session's real Redis and chDB, with a fake
clock (time moves by assignment, nothing sleeps to wait for a due time):

- DST: schedules in Europe/Berlin and America/New_York fire at the right
  instants across both changes of 2027, and never at croniter's wrong ones;
- two schedulers at once (leading in turn, or both believing they lead)
  enqueue each due run once;
- killing the leader hands the lock over within its lifetime;
- after a day of downtime only the latest missed occurrence runs, once.

Each test has its own organization and lock key, so the scheduler of the
gateway (when other tests started one) neither leads nor fires here.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest_asyncio
from redis.asyncio import Redis

from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.tokens import Principal, Role
from reports.plan_models import Definition, ReportScheduleRequest
from reports.schedules import ScheduleStore
from reports.scheduler import Scheduler
from tests.support import eventually, unique_org


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest_asyncio.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def new_schedule(store: ClickHouseStore, org: str, **timing: Any) -> str:
    scope = Scope.of(Principal("owner", Role.SUBSCRIBER_ADMIN, org, ()))
    # from 2027 on: the fake clock's time, never due on the real one (a gateway's scheduler in the session)
    request = ReportScheduleRequest(
        name="nightly", definition=Definition(report_type="engagement-trend"), recipients=["ops@example.org"],
        start_date="2027-01-01", **timing,
    )  # fmt: skip
    schedule = await ScheduleStore(store).create(scope, request)
    return schedule.id


async def runs(store: ClickHouseStore, org: str) -> list[dict[str, Any]]:
    return await store.query(
        """SELECT schedule_id, due_at, job_id, trigger, missed FROM report_schedule_runs FINAL
           WHERE organization_id = {org:String} ORDER BY due_at""",
        {"org": org},
    )


async def jobs_of(store: ClickHouseStore, org: str) -> list[str]:
    rows = await store.query(
        "SELECT DISTINCT job_id FROM report_jobs WHERE organization_id = {org:String} ORDER BY job_id", {"org": org}
    )
    return [row["job_id"] for row in rows]


def scheduler(store: ClickHouseStore, redis: Redis, clock: FakeClock, org: str, key: str, lock_s: float = 30.0) -> Scheduler:
    return Scheduler(store, redis, clock=clock, lock_s=lock_s, tick_s=lock_s / 5, lock_key=key, organization_id=org)


async def fire_in_window(
    one: Scheduler, clock: FakeClock, start: datetime, expected: list[datetime], wrong: list[datetime]
) -> list[datetime]:
    """What fires when the clock visits each expected instant (a minute before, at, a minute after)
    and each wrong one, after a first step at `start` that catches up on the time before the window."""
    clock.now = start
    assert await one.step() is not None, "the only scheduler leads"
    probes = sorted({t for due in expected for t in (due - timedelta(minutes=1), due, due + timedelta(minutes=1))} | set(wrong))
    fired = []
    for now in probes:
        clock.now = now
        result = await one.step()
        assert result is not None
        fired += [f.due for f in result]
    return fired


async def test_berlin_and_new_york_fire_at_the_right_instants_across_both_changes(store: ClickHouseStore, redis: Redis) -> None:
    clock = FakeClock(utc(2027, 1, 1))
    org = unique_org()
    berlin = scheduler(store, redis, clock, org, f"test-lock-{uuid.uuid4().hex}")
    await new_schedule(store, org, cron_expression="30 2 * * *", timezone="Europe/Berlin")
    # spring: 02:30 is skipped on 03-28 and runs at 03:30 CEST (01:30Z)
    spring = [utc(2027, 3, 27, 1, 30), utc(2027, 3, 28, 1, 30), utc(2027, 3, 29, 0, 30)]
    assert await fire_in_window(berlin, clock, utc(2027, 3, 27, 1), spring, []) == spring
    # autumn: 02:30 CEST once (not again at 02:30 CET, 01:30Z), then 02:30 CET (not croniter's 03:30 CET, 02:30Z)
    autumn = [utc(2027, 10, 31, 0, 30), utc(2027, 11, 1, 1, 30)]
    wrong = [utc(2027, 10, 31, 1, 30), utc(2027, 11, 1, 2, 30)]
    assert await fire_in_window(berlin, clock, utc(2027, 10, 30, 1), autumn, wrong) == autumn

    ny_org = unique_org()
    new_york = scheduler(store, redis, clock, ny_org, f"test-lock-{uuid.uuid4().hex}")
    await new_schedule(store, ny_org, cron_expression="30 1 * * *", timezone="America/New_York")
    spring = [utc(2027, 3, 14, 6, 30), utc(2027, 3, 15, 5, 30), utc(2027, 3, 16, 5, 30)]
    wrong = [utc(2027, 3, 15, 4, 30)]  # croniter's second run on 03-15 (00:30 EDT)
    assert await fire_in_window(new_york, clock, utc(2027, 3, 13, 12), spring, wrong) == spring
    autumn = [utc(2027, 11, 7, 5, 30), utc(2027, 11, 8, 6, 30)]
    wrong = [utc(2027, 11, 7, 6, 30), utc(2027, 11, 8, 7, 30)]  # 01:30 EST the same night; croniter's 02:30 EST
    assert await fire_in_window(new_york, clock, utc(2027, 11, 6, 12), autumn, wrong) == autumn
    recorded = await runs(store, ny_org)
    assert [row["trigger"] for row in recorded] == ["catch-up", "scheduled", "scheduled", "scheduled", "catch-up", "scheduled", "scheduled"]


async def test_two_schedulers_at_once_enqueue_each_due_run_once(store: ClickHouseStore, redis: Redis) -> None:
    org = unique_org()
    clock = FakeClock(utc(2027, 5, 1, 0, 0))
    key = f"test-lock-{uuid.uuid4().hex}"
    first, second = scheduler(store, redis, clock, org, key), scheduler(store, redis, clock, org, key)
    await new_schedule(store, org, cron_expression="*/10 * * * *")
    await first.step()  # catch-up since activeSince: the 00:00 run
    leaders = []
    for minute in range(1, 61):
        clock.now = utc(2027, 5, 1, 0, 0) + timedelta(minutes=minute)
        results = await asyncio.gather(first.step(), second.step())
        leaders.append(sum(result is not None for result in results))
        # and both believing they lead (a lock lost mid-tick): the claims keep it once
        await asyncio.gather(first.tick(), second.tick())
    assert set(leaders) == {1}
    recorded = await runs(store, org)
    dues = [row["due_at"] for row in recorded]
    assert len(dues) == len(set(dues)) == 7  # 00:00 .. 01:00 every 10 minutes
    assert len(await jobs_of(store, org)) == 7


async def test_killing_the_leader_hands_over_within_the_lock_lifetime(store: ClickHouseStore, redis: Redis) -> None:
    org = unique_org()
    clock = FakeClock(utc(2027, 6, 1))
    key, lifetime = f"test-lock-{uuid.uuid4().hex}", 1.0
    first, second = scheduler(store, redis, clock, org, key, lifetime), scheduler(store, redis, clock, org, key, lifetime)
    stop = asyncio.Event()
    leading = asyncio.create_task(first.run(stop))
    await eventually(lambda: redis.get(key), lambda holder: holder == first.lock.token.encode())
    waiting = asyncio.create_task(second.run(stop))
    # the first renews: over twice its lifetime the second never takes over
    deadline = time.monotonic() + 2 * lifetime
    while time.monotonic() < deadline:
        assert await redis.get(key) == first.lock.token.encode()
        await asyncio.sleep(0.05)
    leading.cancel()  # killed: no release, its lock expires
    killed = time.monotonic()
    await asyncio.gather(leading, return_exceptions=True)
    await eventually(lambda: redis.get(key), lambda holder: holder == second.lock.token.encode(), timeout=5)
    handover = time.monotonic() - killed
    assert handover <= lifetime + 0.25, handover
    stop.set()
    await waiting
    assert await redis.get(key) is None  # a clean stop releases


async def test_after_a_day_of_downtime_only_the_latest_missed_occurrence_runs_once(store: ClickHouseStore, redis: Redis) -> None:
    org = unique_org()
    clock = FakeClock(utc(2027, 7, 1, 8, 0))
    one = scheduler(store, redis, clock, org, f"test-lock-{uuid.uuid4().hex}")
    await new_schedule(store, org, cron_expression="0 * * * *")
    await one.step()  # 08:00 (the catch-up of the time since activeSince)
    clock.now = utc(2027, 7, 1, 9, 0, 30)
    on_time = await one.step()
    assert on_time is not None and [(f.due, f.trigger) for f in on_time] == [(utc(2027, 7, 1, 9), "scheduled")]
    # down from 09:01 until 10:30 the next day: 25 occurrences missed (10:00 .. 10:00)
    clock.now = utc(2027, 7, 2, 10, 30)
    caught_up = await one.step()
    assert caught_up is not None and [(f.due, f.trigger, f.missed) for f in caught_up] == [(utc(2027, 7, 2, 10), "catch-up", 24)]
    assert await one.step() == []  # once
    clock.now = utc(2027, 7, 2, 11, 0, 5)
    assert [f.due for f in await one.step() or []] == [utc(2027, 7, 2, 11)]
    recorded = await runs(store, org)
    assert [row["trigger"] for row in recorded] == ["catch-up", "scheduled", "catch-up", "scheduled"]
    assert len(await jobs_of(store, org)) == 4
