"""The readers of the analytics benchmark (bench_analytics.py): who reads
(a token and the ids in its scope, per role), what (every endpoint, ids
rotating through the scope), and how (concurrent readers, cache missed on
purpose or filled first), with the latency figures."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import analytics_data as data
import orjson

from lms_events.tokens import Role, mint

TIMEFRAMES = ("7d", "30d", "90d", "1y")


@dataclass
class Caller:
    """A reader of bench-org-0: a role's token and what is in its scope."""

    role: str
    token: str
    users: list[str]
    courses: list[str]
    assessments: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.assessments = data.assessments_of(self.courses)


def callers(secret: bytes) -> dict[str, Caller]:
    org = data.BIG_ORG
    every_user = [f"usr_{u}" for u in range(data.USERS_PER_ORG)]
    departments = ("dep_0_0", "dep_0_1")
    department_users = data.users_of_departments(set(departments))
    teacher = data.teacher_of(0, 0)
    students = data.students_of(teacher)
    student = "usr_5"
    return {
        "subscriber-admin": Caller("subscriber-admin", mint(secret, sub="adm_0", role=Role.SUBSCRIBER_ADMIN, organization_id=org),
                                   every_user, data.courses_of(every_user)),
        "teacher-admin": Caller("teacher-admin", mint(secret, sub="tad_0", role=Role.TEACHER_ADMIN, organization_id=org,
                                                      departments=departments), department_users, data.courses_of(department_users)),
        "teacher": Caller("teacher", mint(secret, sub=teacher, role=Role.TEACHER, organization_id=org), students, data.courses_of(students)),
        "student": Caller("student", mint(secret, sub=student, role=Role.STUDENT, organization_id=org), [student], data.courses_of([student])),
    }


def endpoints(until: str) -> list[tuple[str, Callable[[Caller, int], str]]]:
    """(name, path of a caller's n-th request): every endpoint, ids rotating through the caller's scope."""
    def dashboard(timeframe: str) -> Callable[[Caller, int], str]:
        return lambda c, n: f"/api/v1/dashboard?timeframe={timeframe}&until={until}"

    return [
        *[(f"dashboard {tf}", dashboard(tf)) for tf in TIMEFRAMES],
        ("dashboard 30d, course filter", lambda c, n: f"/api/v1/dashboard?timeframe=30d&until={until}&filters="
                                                      + orjson.dumps({"courseId": c.courses[n % len(c.courses)]}).decode()),
        ("users/{id}/analytics", lambda c, n: f"/api/v1/users/{c.users[n * 7 % len(c.users)]}/analytics"),
        ("courses/{id}/analytics", lambda c, n: f"/api/v1/courses/{c.courses[n * 3 % len(c.courses)]}/analytics"),
        ("assessments/{id}/analytics", lambda c, n: f"/api/v1/assessments/{c.assessments[n * 5 % len(c.assessments)]}/analytics"),
        ("learning-progress, first page", lambda c, n: f"/api/v1/learning-progress?until={until}"),
        ("learning-progress, course+status", lambda c, n: f"/api/v1/learning-progress?until={until}&status=completed"
                                                          f"&courseId={c.courses[n % len(c.courses)]}"),
        ("events, first page", lambda c, n: "/api/v1/events"),
        ("events, one user, first page", lambda c, n: f"/api/v1/events?userId={c.users[n * 7 % len(c.users)]}"),
    ]


_unique = iter(range(10**12))


def uncached(path: str) -> str:
    """A unique dummy parameter: the cache key (every query parameter) misses, the handler ignores it."""
    return f"{path}{'&' if '?' in path else '?'}_bench={next(_unique)}"


class Failure(Exception):
    pass


async def get(session: aiohttp.ClientSession, url: str, caller: Caller) -> tuple[float, Any]:
    started = time.perf_counter()
    async with session.get(url, headers={"Authorization": f"Bearer {caller.token}"}) as response:
        body = await response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise Failure(f"{response.status} {url}: {body[:300]!r}")
    return elapsed, orjson.loads(body)


def pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def readers(
    session: aiohttp.ClientSession, base: str, team: list[Caller], path: Callable[[Caller, int], str], requests: int, cached: bool
) -> dict[str, list[float]]:
    """len(team) concurrent readers, each `requests` in a row; latencies (s) by role."""
    by_role: dict[str, list[float]] = {}

    async def reader(index: int, caller: Caller) -> None:
        fixed = path(caller, index)
        if cached:
            await get(session, base + fixed, caller)  # the miss that fills the cache
        for n in range(requests):
            url = base + (fixed if cached else uncached(path(caller, index * requests + n)))
            elapsed, _ = await get(session, url, caller)
            by_role.setdefault(caller.role, []).append(elapsed)

    await asyncio.gather(*(reader(i, caller) for i, caller in enumerate(team)))
    return by_role


def flat(by_role: dict[str, list[float]]) -> list[float]:
    return [v for values in by_role.values() for v in values]
