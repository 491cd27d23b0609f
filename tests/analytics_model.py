"""The analytics figures recomputed in plain Python from the posted data.

The correctness test compares every answer of the analytics API with
these functions, run over the same lists the test posted (`Dataset`:
domain events as sent to /v1/domain-events, events as sent to /v1/batch).
They follow shared/METRICS.md and the README section "Analytics: what each
number means" literally, and import nothing of the product (only the
taxonomy data file, for event categories): a shared mistake would hide.

Conventions the data set keeps, so that "what the product stored" is
knowable from what was sent (see tests/analytics_data.py):
- an event's course and class are what the client sent (properties, then
  context), its department its user's latest department;
- every domain event carries its time (its own field or occurredAt).

Users, courses and classes are keyed by (organization, id) throughout:
the same id in two organizations names two things.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from statistics import fmean
from typing import Any

import schemas
from tests.analytics_data import Dataset

DROPPED_AFTER_DAYS = 30
TIMEFRAMES = {"7d": 7, "30d": 30, "90d": 90, "1y": 365}
METRIC_TYPES = (
    "total_users",
    "active_users",
    "total_courses",
    "total_enrollments",
    "completion_rate",
    "average_score",
    "learning_hours",
)
# Only these categories land in the `events` table; performance and BI events are no learning metric.
EVENT_CATEGORIES = frozenset({"learning_progress", "user_interaction"})
# METRICS.md, Sources: a fact is timed by its own field when present, else occurredAt.
OWN_TIME = {
    "UserEnrolled": "enrolledAt",
    "UserCompletedCourse": "completedAt",
    "ModuleCompleted": "completedAt",
    "AssessmentStarted": "startedAt",
    "AssessmentCompleted": "completedAt",
}
MS_PER_HOUR = 3_600_000
MS_PER_MINUTE = 60_000
EVERYONE = None  # a scope's member set that does not restrict users


@dataclass(frozen=True)
class Scope:
    """The caller, as its token says (role, org, sub, departments)."""

    role: str  # system-admin, subscriber-admin, teacher-admin, teacher, student
    organization_id: str | None
    sub: str = ""
    departments: tuple[str, ...] = ()


# ---------------------------------------------------------------------------
# The index: deduplicated facts and events of each organization
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    organization_id: str
    event_id: str
    event_type: str
    category: str
    timestamp: datetime
    user_id: str | None
    course_id: str | None
    class_id: str | None
    department_id: str | None
    score: float | None
    duration_ms: int | None
    concept_tags: tuple[str, ...]

    @property
    def learning(self) -> bool:
        return self.category == "learning_progress"


@dataclass
class Enrollment:
    enrolled_at: datetime  # earliest enrolledAt of the pair
    classes: dict[str, datetime] = field(default_factory=dict)  # class -> earliest enrolledAt with it


@dataclass(frozen=True)
class Completion:
    at: datetime
    score: float | None  # finalScore / score of the earliest one


@dataclass(frozen=True)
class Attempt:
    user_id: str
    course_id: str
    at: datetime
    score: float | None
    passed: bool
    time_spent_s: float | None


@dataclass
class Organization:
    """One organization's state after every fact, replays collapsed."""

    created: dict[str, datetime] = field(default_factory=dict)  # user -> earliest UserCreated
    declared: set[str] = field(default_factory=set)  # users with UserCreated or UserUpdated
    department: dict[str, str] = field(default_factory=dict)  # user -> latest departmentId
    course_created: dict[str, datetime] = field(default_factory=dict)
    modules: dict[str, list[str]] = field(default_factory=dict)  # course -> latest listed modules
    class_course: dict[str, str] = field(default_factory=dict)
    class_teachers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    enrollments: dict[tuple[str, str], Enrollment] = field(default_factory=dict)  # (user, course)
    completions: dict[tuple[str, str], Completion] = field(default_factory=dict)  # (user, course)
    module_completions: dict[tuple[str, str, str], Completion] = field(default_factory=dict)  # (user, course, module)
    attempts: dict[str, list[Attempt]] = field(default_factory=dict)  # assessment -> attempts
    events: list[Event] = field(default_factory=list)

    def taught(self, teacher: str) -> set[str]:
        """Users enrolled, at any time, with a class whose latest teacherIds hold `teacher`."""
        classes = {c for c, teachers in self.class_teachers.items() if teacher in teachers}
        return {user for (user, _), e in self.enrollments.items() if classes & e.classes.keys()}


World = dict[str, Organization]
_worlds: weakref.WeakKeyDictionary[Dataset, World] = weakref.WeakKeyDictionary()


def index(data: Dataset) -> World:
    """Every organization's state; computed once per data set (treat the data set as immutable)."""
    world = _worlds.get(data)
    if world is None:
        world = _worlds[data] = _build(data)
    return world


def _build(data: Dataset) -> World:
    world: World = {org: Organization() for org in data.organization_ids}
    facts = _unique_facts(data.domain_events)
    # latest-state attributes (department, teachers, modules) are the latest by time
    for fact in sorted(facts, key=_fact_time):  # stable: posting order breaks ties in time
        _apply(world.setdefault(fact["organizationId"], Organization()), fact, _fact_time(fact))
    seen: set[tuple[str, str]] = set()
    for raw in data.events:
        event = _event(raw, world)
        if event is not None and (event.organization_id, event.event_id) not in seen:
            seen.add((event.organization_id, event.event_id))
            world[event.organization_id].events.append(event)
    for organization in world.values():
        organization.events.sort(key=lambda e: (e.timestamp, e.event_id))
    return world


def _unique_facts(domain_events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One of each fact: identity is eventId when sent, else the content as the client sent it."""
    seen: set[tuple[str, str, str]] = set()
    unique = []
    for fact in domain_events:
        identity = fact.get("eventId") or json.dumps(fact, sort_keys=True, separators=(",", ":"))
        key = (fact.get("organizationId", ""), fact["eventType"], identity)
        if key not in seen:
            seen.add(key)
            unique.append(fact)
    return unique


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def iso(moment: datetime) -> str:
    """Times in answers: `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _fact_time(fact: dict[str, Any]) -> datetime:
    own = OWN_TIME.get(fact["eventType"])
    return parse_time((own and fact.get(own)) or fact["occurredAt"])


def _apply(org: Organization, fact: dict[str, Any], at: datetime) -> None:
    """Fold one fact (visited in time order) into its organization's state."""
    kind, user, course = fact["eventType"], fact.get("userId"), fact.get("courseId")
    if kind in ("UserCreated", "UserUpdated"):
        org.declared.add(user)
        if kind == "UserCreated":
            org.created.setdefault(user, at)
        if fact.get("departmentId"):
            org.department[user] = fact["departmentId"]
    elif kind in ("CourseCreated", "CourseContentsUpdated"):
        if kind == "CourseCreated":
            org.course_created.setdefault(course, at)
        if "contents" in fact:
            org.modules[course] = _listed_modules(fact["contents"])
    elif kind in ("ClassCreated", "ClassUpdated"):
        if fact.get("courseId"):
            org.class_course[fact["classId"]] = fact["courseId"]
        if fact.get("teacherIds"):
            org.class_teachers[fact["classId"]] = tuple(fact["teacherIds"])
    elif kind == "UserEnrolled":
        enrollment = org.enrollments.setdefault((user, course), Enrollment(at))
        if fact.get("classId"):
            enrollment.classes.setdefault(fact["classId"], at)
    elif kind == "UserCompletedCourse":
        org.completions.setdefault((user, course), Completion(at, fact.get("finalScore")))
    elif kind == "ModuleCompleted":
        org.module_completions.setdefault((user, course, fact["moduleId"]), Completion(at, fact.get("score")))
    elif kind == "AssessmentCompleted":
        attempt = Attempt(user, course, at, fact.get("score"), fact.get("passed") is True, fact.get("timeSpent"))
        org.attempts.setdefault(fact["assessmentId"], []).append(attempt)


def _listed_modules(contents: list[dict[str, Any]]) -> list[str]:
    """Module ids of a contents list in order of first appearance."""
    return list(dict.fromkeys(item["moduleId"] for item in contents if item.get("moduleId")))


def _category(event_type: str) -> str:
    return schemas.load("taxonomy.json")["event_types"].get(event_type, {}).get("category", "")


def _event(raw: dict[str, Any], world: World) -> Event | None:
    """The stored row of one posted event, or None when it goes to no `events` row."""
    category = _category(raw["event_type"])
    org_id = raw.get("organization_id")
    if category not in EVENT_CATEGORIES or not org_id:
        return None
    properties, context = raw.get("properties") or {}, raw.get("context") or {}
    sent = lambda name: properties.get(name) or context.get(name) or None  # noqa: E731 (enrichment: properties first)
    user = raw.get("user_id")
    organization = world.setdefault(org_id, Organization())
    return Event(
        organization_id=org_id,
        event_id=raw["event_id"],
        event_type=raw["event_type"],
        category=category,
        timestamp=parse_time(raw["timestamp"]),
        user_id=user,
        course_id=sent("course_id"),
        class_id=sent("class_id"),
        department_id=organization.department.get(user) if user else None,
        score=_number(properties.get("score")),
        duration_ms=_number(properties.get("duration_ms")),
        concept_tags=tuple(properties.get("concept_tags") or ()) if raw["event_type"] == "concept_mastered" else (),
    )


def _number(value: Any) -> Any:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


# ---------------------------------------------------------------------------
# Scopes
# ---------------------------------------------------------------------------


def organizations_of(world: World, scope: Scope) -> list[str]:
    """A system-admin without an organization spans them all; everyone else has one."""
    if scope.organization_id is None:
        if scope.role != "system-admin":
            raise ValueError(f"a {scope.role} always has an organization")
        return sorted(world)
    return [scope.organization_id]


def members(org: Organization, scope: Scope) -> set[str] | None:
    """The users of one organization the caller sees; EVERYONE (None) for admins of it."""
    if scope.role in ("system-admin", "subscriber-admin"):
        return EVERYONE
    if scope.role == "teacher-admin":
        return {user for user, department in org.department.items() if department in scope.departments}
    if scope.role == "teacher":
        return org.taught(scope.sub) | {scope.sub}
    if scope.role == "student":
        return {scope.sub}
    raise ValueError(f"unknown role {scope.role}")


def members_of(data: Dataset, scope: Scope) -> set[str]:
    """The users of the scope's organization the caller sees, as a set (admins: every user with a department)."""
    org = index(data)[scope.organization_id]
    found = members(org, scope)
    return set(org.department) if found is EVERYONE else found


def _sees(scope_members: set[str] | None, user: str | None) -> bool:
    return scope_members is EVERYONE or user in scope_members


def _one_organization(world: World, scope: Scope) -> tuple[Organization, set[str] | None]:
    if scope.organization_id is None:
        raise ValueError("this figure is per organization: a system-admin passes one")
    org = world.get(scope.organization_id) or Organization()
    return org, members(org, scope)


# ---------------------------------------------------------------------------
# Rounding and shapes
# ---------------------------------------------------------------------------


def rounded(value: float | None) -> float | None:
    """Rates, averages, hours and minutes: round(x, 2) once, on the unrounded figure."""
    return None if value is None else round(value, 2)


def mean(values: Iterable[float]) -> float | None:
    """A mean over nothing is None, never 0."""
    values = list(values)
    return fmean(values) if values else None


def change_percentage(value: float | None, previous: float | None) -> float | None:
    if not previous or value is None:
        return None
    return rounded(100 * (value - previous) / previous)


# ---------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------


def day_end(until: date) -> datetime:
    """e: the midnight after `until`."""
    return datetime.combine(until + timedelta(days=1), time(0), UTC)


def window(until: date, timeframe: str) -> tuple[datetime, datetime]:
    """[s, e) with s = e - timeframe."""
    end = day_end(until)
    return end - timedelta(days=TIMEFRAMES[timeframe]), end


@dataclass(frozen=True)
class _View:
    """The dashboard's narrowing: scope members and filters, per organization."""

    world: World
    scope: Scope
    filters: dict[str, Any]

    def orgs(self) -> Iterable[tuple[str, Organization, set[str] | None]]:
        for org_id in organizations_of(self.world, self.scope):
            org = self.world.get(org_id) or Organization()
            yield org_id, org, members(org, self.scope)

    def in_population(self, org: Organization, scope_members: set[str] | None, user: str | None, cutoff: datetime) -> bool:
        """In the caller's scope and in the filters' user population as of `cutoff`."""
        if user is None or not _sees(scope_members, user):
            return False
        department, course, class_id = (self.filters.get(k) for k in ("departmentId", "courseId", "classId"))
        if department and org.department.get(user) != department:
            return False
        if course and not _enrolled_before(org, user, course, cutoff):
            return False
        return not class_id or any(
            at < cutoff for (u, _), e in org.enrollments.items() if u == user for c, at in e.classes.items() if c == class_id
        )

    def event_matches(self, event: Event) -> bool:
        """The filters narrow events by their own columns."""
        return all(
            not wanted or getattr(event, column) == wanted
            for column, wanted in (
                ("department_id", self.filters.get("departmentId")),
                ("course_id", self.filters.get("courseId")),
                ("class_id", self.filters.get("classId")),
            )
        )

    def events(self, start: datetime, end: datetime, cutoff: datetime) -> list[tuple[str, Event]]:
        """Events in [start, end) of the population as of `cutoff`, matching the filters."""
        return [
            (org_id, event)
            for org_id, org, scope_members in self.orgs()
            for event in org.events
            if start <= event.timestamp < end
            and self.event_matches(event)
            and self.in_population(org, scope_members, event.user_id, cutoff)
        ]

    def enrollments(self, cutoff: datetime) -> list[tuple[str, str, str]]:
        """(org, user, course) enrolled before `cutoff`, narrowed by scope and filters."""
        course, class_id = self.filters.get("courseId"), self.filters.get("classId")
        return [
            (org_id, user, c)
            for org_id, org, scope_members in self.orgs()
            for (user, c), e in org.enrollments.items()
            if e.enrolled_at < cutoff
            and (not course or c == course)
            and (not class_id or e.classes.get(class_id, cutoff) < cutoff)
            and self.in_population(org, scope_members, user, cutoff)
        ]


def _enrolled_before(org: Organization, user: str, course: str, cutoff: datetime) -> bool:
    enrollment = org.enrollments.get((user, course))
    return enrollment is not None and enrollment.enrolled_at < cutoff


def _total_users(view: _View, cutoff: datetime) -> int:
    return sum(
        1
        for _, org, scope_members in view.orgs()
        for user, created in org.created.items()
        if created < cutoff and view.in_population(org, scope_members, user, cutoff)
    )


def _total_courses(view: _View, cutoff: datetime) -> int:
    """Courses created before the cutoff; the filtered course (or the class's) alone; for the
    narrower roles only courses a user of the scope was enrolled in before the cutoff."""
    course, class_id = view.filters.get("courseId"), view.filters.get("classId")
    count = 0
    for _, org, scope_members in view.orgs():
        for c, created in org.course_created.items():
            if created >= cutoff or (course and c != course) or (class_id and org.class_course.get(class_id) != c):
                continue
            if scope_members is EVERYONE or any(_enrolled_before(org, u, c, cutoff) for u in scope_members):
                count += 1
    return count


def _completion_rate(view: _View, cutoff: datetime) -> float:
    enrolled = view.enrollments(cutoff)
    if not enrolled:
        return 0
    completed = [
        1 for org_id, user, c in enrolled if (done := view.world[org_id].completions.get((user, c))) and done.at < cutoff
    ]
    return 100 * len(completed) / len(enrolled)


def _window_figures(view: _View, start: datetime, end: datetime) -> dict[str, Any]:
    """The event-based metrics of one window, population as of its end."""
    events = view.events(start, end, end)
    return {
        "active_users": len({(org_id, e.user_id) for org_id, e in events}),
        "average_score": mean(e.score for _, e in events if e.score is not None),
        "learning_hours": sum(e.duration_ms or 0 for _, e in events if e.learning) / MS_PER_HOUR,
    }


def _figures(view: _View, start: datetime, end: datetime) -> dict[str, Any]:
    """Every metric for the window [start, end), unrounded."""
    return {
        "total_users": _total_users(view, end),
        "total_courses": _total_courses(view, end),
        "total_enrollments": len(view.enrollments(end)),
        "completion_rate": _completion_rate(view, end),
        **_window_figures(view, start, end),
    }


ROUNDED_METRICS = frozenset({"completion_rate", "average_score", "learning_hours"})


def _shown(metric: str, value: Any) -> Any:
    return rounded(value) if metric in ROUNDED_METRICS else value


def dashboard(
    data: Dataset, scope: Scope, *, timeframe: str = "30d", until: date, filters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """GET /api/v1/dashboard without calculatedAt."""
    view = _View(index(data), scope, dict(filters or {}))
    start, end = window(until, timeframe)
    current = _figures(view, start, end)
    previous = _figures(view, start - (end - start), start)
    metrics = [
        {
            "metricType": metric,
            "value": _shown(metric, current[metric]),
            "previousValue": _shown(metric, previous[metric]),
            "changePercentage": change_percentage(current[metric], previous[metric]),
            "timeframe": timeframe,
            "filters": dict(filters or {}),
        }
        for metric in METRIC_TYPES
    ]
    events = view.events(start, end, end)
    return {"metrics": metrics, "charts": _charts(events, start, end), "summary": {"totalEvents": len(events)}}


def _charts(events: list[tuple[str, Event]], start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Active users and learning hours per UTC date of the window, zero-filled, ascending."""
    days = [(start + timedelta(days=n)).date() for n in range((end - start).days)]
    users: dict[date, set[tuple[str, str | None]]] = {day: set() for day in days}
    hours: dict[date, float] = dict.fromkeys(days, 0)
    for org_id, event in events:
        users[event.timestamp.date()].add((org_id, event.user_id))
        if event.learning:
            hours[event.timestamp.date()] += (event.duration_ms or 0) / MS_PER_HOUR
    return [
        {"metricType": "active_users", "points": [{"date": day.isoformat(), "value": len(users[day])} for day in days]},
        {"metricType": "learning_hours", "points": [{"date": day.isoformat(), "value": rounded(hours[day])} for day in days]},
    ]


# ---------------------------------------------------------------------------
# User, course, assessment (all time, one organization)
# ---------------------------------------------------------------------------


def user_analytics(data: Dataset, scope: Scope, user_id: str) -> dict[str, Any] | None:
    """GET /api/v1/users/{userId}/analytics; None = 404 (unknown in the organization, or out of scope)."""
    org, scope_members = _one_organization(index(data), scope)
    if user_id not in org.declared or not _sees(scope_members, user_id):
        return None
    events = [e for e in org.events if e.user_id == user_id]
    courses = sorted(((e.enrolled_at, c) for (u, c), e in org.enrollments.items() if u == user_id))
    last = max((e.timestamp for e in events), default=None)
    return {
        "userId": user_id,
        "totalCoursesEnrolled": len(courses),
        "totalCoursesCompleted": sum(1 for (u, _) in org.completions if u == user_id),
        "totalLearningHours": rounded(sum(e.duration_ms or 0 for e in events if e.learning) / MS_PER_HOUR),
        "averageScore": rounded(mean(e.score for e in events if e.score is not None)),
        "lastActiveDate": iso(last) if last else None,
        "streakDays": streak({e.timestamp.date() for e in events}),
        "learningPath": [c for _, c in courses],
        "skillsAcquired": sorted({tag for e in events for tag in e.concept_tags}),
    }


def streak(active_dates: set[date]) -> int:
    """Consecutive active UTC dates ending on the latest one (0 with none)."""
    if not active_dates:
        return 0
    day, length = max(active_dates), 0
    while day in active_dates:
        length, day = length + 1, day - timedelta(days=1)
    return length


def course_analytics(data: Dataset, scope: Scope, course_id: str) -> dict[str, Any] | None:
    """GET /api/v1/courses/{courseId}/analytics; None = 404 (no CourseCreated in the organization)."""
    org, scope_members = _one_organization(index(data), scope)
    if course_id not in org.course_created:
        return None
    enrolled = {u: e for (u, c), e in org.enrollments.items() if c == course_id and _sees(scope_members, u)}
    completed = {u: done for (u, c), done in org.completions.items() if c == course_id and _sees(scope_members, u)}
    modules = org.modules.get(course_id, [])
    module_done = {
        (u, m): done for (u, c, m), done in org.module_completions.items() if c == course_id and _sees(scope_members, u)
    }
    return {
        "courseId": course_id,
        "totalEnrollments": len(enrolled),
        "totalCompletions": len(completed),
        "completionRate": rounded(100 * len(completed) / len(enrolled)) if enrolled else 0,
        "averageScore": rounded(
            mean(
                e.score
                for e in org.events
                if e.course_id == course_id and e.score is not None and _sees(scope_members, e.user_id)
            )
        ),
        "averageTimeToComplete": rounded(
            mean((done.at - enrolled[u].enrolled_at) / timedelta(hours=1) for u, done in completed.items() if u in enrolled)
        ),
        "enrollmentTrend": enrollment_trend(e.enrolled_at for e in enrolled.values()),
        "moduleAnalytics": [
            {
                "moduleId": m,
                "completions": sum(1 for (_, mm) in module_done if mm == m),
                "averageScore": rounded(mean(d.score for (_, mm), d in module_done.items() if mm == m and d.score is not None)),
            }
            for m in modules
        ],
        "dropoffPoints": _dropoff(modules, module_done, set(completed)),
    }


def iso_week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def enrollment_trend(enrolled_at: Iterable[datetime]) -> list[dict[str, Any]]:
    """Enrollments per ISO week from the first week with one to the last, zero-filled."""
    counts: dict[str, int] = {}
    mondays = []
    for at in enrolled_at:
        counts[iso_week(at.date())] = counts.get(iso_week(at.date()), 0) + 1
        mondays.append(at.date() - timedelta(days=at.weekday()))
    if not mondays:
        return []
    weeks = (min(mondays) + timedelta(weeks=n) for n in range((max(mondays) - min(mondays)).days // 7 + 1))
    return [{"week": iso_week(monday), "value": counts.get(iso_week(monday), 0)} for monday in weeks]


def _dropoff(modules: list[str], module_done: dict[tuple[str, str], Completion], completed: set[str]) -> list[dict[str, Any]]:
    """Per listed module: learners who have not completed the course whose latest module completion it is."""
    latest: dict[str, tuple[datetime, str]] = {}
    for (user, module), done in module_done.items():
        if user not in completed:
            # ties in time (none in generated data) go to the greater module id
            latest[user] = max(latest.get(user, (done.at, module)), (done.at, module))
    return [{"moduleId": m, "learners": sum(1 for _, lm in latest.values() if lm == m)} for m in modules]


def assessment_analytics(data: Dataset, scope: Scope, assessment_id: str) -> dict[str, Any] | None:
    """GET /api/v1/assessments/{assessmentId}/analytics; None = 404 (no attempt in the organization)."""
    org, scope_members = _one_organization(index(data), scope)
    everyone = org.attempts.get(assessment_id)
    if not everyone:
        return None
    attempts = [a for a in everyone if _sees(scope_members, a.user_id)]
    pass_rate = 100 * sum(a.passed for a in attempts) / len(attempts) if attempts else None
    time_spent = mean(a.time_spent_s for a in attempts if a.time_spent_s is not None)
    return {
        "assessmentId": assessment_id,
        # the course of its earliest attempt in the organization (whoever asks)
        "courseId": min(everyone, key=lambda a: a.at).course_id,
        "totalAttempts": len(attempts),
        "averageScore": rounded(mean(a.score for a in attempts if a.score is not None)),
        "passRate": rounded(pass_rate),
        "averageTimeSpent": rounded(time_spent / 60 if time_spent is not None else None),
        "difficultyRating": rounded(1 - pass_rate / 100 if pass_rate is not None else None),
    }


# ---------------------------------------------------------------------------
# Learning progress (as of e)
# ---------------------------------------------------------------------------


def learning_progress(
    data: Dataset,
    scope: Scope,
    *,
    until: date,
    user_id: str | None = None,
    course_id: str | None = None,
    status: str | None = None,
    dropped_after_days: int = DROPPED_AFTER_DAYS,
) -> list[dict[str, Any]]:
    """GET /api/v1/learning-progress, every page's items in order: one row per enrollment before e."""
    org, scope_members = _one_organization(index(data), scope)
    end = day_end(until)
    rows = [
        _progress(org, user, course, enrollment, end, timedelta(days=dropped_after_days))
        for (user, course), enrollment in sorted(org.enrollments.items())
        if enrollment.enrolled_at < end
        and _sees(scope_members, user)
        and (user_id is None or user == user_id)
        and (course_id is None or course == course_id)
    ]
    return [row for row in rows if status is None or row["status"] == status]


def _progress(
    org: Organization, user: str, course: str, enrollment: Enrollment, end: datetime, dropped_after: timedelta
) -> dict[str, Any]:
    events = [e for e in org.events if e.user_id == user and e.course_id == course and e.timestamp < end]
    modules_done = {m: d.at for (u, c, m), d in org.module_completions.items() if (u, c) == (user, course) and d.at < end}
    completion = org.completions.get((user, course))
    completion = completion if completion and completion.at < end else None
    touched = [e.timestamp for e in events] + list(modules_done.values())
    last_access = max(touched, default=enrollment.enrolled_at)
    if completion:
        status = "completed"
    elif touched:
        status = "dropped" if end - last_access > dropped_after else "in_progress"
    else:
        status = "not_started"
    return {
        "userId": user,
        "courseId": course,
        "progressPercentage": _progress_percentage(org.modules.get(course, []), modules_done, completion is not None),
        "timeSpent": rounded(sum(e.duration_ms or 0 for e in events) / MS_PER_MINUTE),
        "lastAccessDate": iso(last_access),
        "completionDate": iso(completion.at) if completion else None,
        "score": completion.score if completion else None,
        "status": status,
    }


def _progress_percentage(listed: list[str], done: dict[str, datetime], completed: bool) -> float:
    """100 once completed; else the share of listed modules completed (0 when none listed)."""
    if completed:
        return 100.0
    if not listed:
        return 0.0
    return rounded(100 * len(set(listed) & done.keys()) / len(listed))


# ---------------------------------------------------------------------------
# Drill-down
# ---------------------------------------------------------------------------


def events_list(
    data: Dataset,
    scope: Scope,
    *,
    user_id: str | None = None,
    course_id: str | None = None,
    class_id: str | None = None,
    event_type: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """GET /api/v1/events, every page's items in order (timestamp, event_id); [start, end)."""
    world = index(data)
    wanted: list[Callable[[Event], bool]] = [
        lambda e: user_id is None or e.user_id == user_id,
        lambda e: course_id is None or e.course_id == course_id,
        lambda e: class_id is None or e.class_id == class_id,
        lambda e: event_type is None or e.event_type == event_type,
        lambda e: start is None or e.timestamp >= start,
        lambda e: end is None or e.timestamp < end,
    ]
    found = []
    for org_id in organizations_of(world, scope):
        org = world.get(org_id) or Organization()
        scope_members = members(org, scope)
        found += [e for e in org.events if _sees(scope_members, e.user_id) and all(test(e) for test in wanted)]
    found.sort(key=lambda e: (e.timestamp, e.event_id))
    return [
        {
            "eventId": e.event_id,
            "eventType": e.event_type,
            "timestamp": iso(e.timestamp),
            "userId": e.user_id,
            "courseId": e.course_id,
            "classId": e.class_id,
            "score": e.score,
            "durationMs": e.duration_ms,
        }
        for e in found
    ]
