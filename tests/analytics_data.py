"""A seeded analytics data set: what a learning platform would post over 400 days.

`generate(seed, today=...)` returns the domain events (camelCase, for
`POST /v1/domain-events`) and the events (snake_case, for `POST /v1/batch`)
of a few organizations, deterministic for a seed. The correctness test
posts them through the gateway and compares every analytics answer with
`tests/analytics_model.py`, which recomputes from these same lists.

What the data holds on purpose, because each one is a rule the read side
must get right (METRICS.md, README "Analytics"):
- the same user ids, course ids, class ids and game ids in every
  organization: tenants must not mix;
- exact replays (same `eventId`) and duplicates without `eventId`
  (identical content): each counts once;
- a second completion of a (user, course) with another `finalScore`, a
  repeated ModuleCompleted, a second UserEnrolled of a pair: the
  earliest wins;
- module scores, assessment scores and `timeSpent` sometimes missing;
- a ClassUpdated moving a class to another teacher, UserUpdated
  department changes, one CourseContentsUpdated adding a module;
- events of a learner in a course they are not enrolled in;
- enrollments not started, in progress, dropped (no activity for over
  30 days) and completed.

Posting order keeps enrichment unambiguous: every UserCreated / UserUpdated
comes before any event, so an event's department is its user's latest;
events send `course_id` and, when their enrollment has one, `class_id`
in properties, so enrichment stores what was sent.

Every time is before midnight starting `today` (UTC), so nothing is in the
future for a gateway running on `today`.
"""

from __future__ import annotations

import copy
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

SPAN_DAYS = 400
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

DEPARTMENTS = ("dep_math", "dep_science", "dep_music")
TEACHERS = ("usr_t01", "usr_t02")
TEACHER_ADMIN = "usr_ta01"
TEACHER_ADMIN_DEPARTMENTS = ("dep_math", "dep_music")

# Learning-progress and user-interaction types only, none sampled and none
# needing consent beyond privacy.json's defaults; weights for course events.
COURSE_EVENT_TYPES = {
    "game_stage_complete": 30,
    "game_stage_start": 10,
    "assignment_completed": 14,
    "concept_mastered": 8,
    "target_met": 4,
    "sequence_view": 12,
    "assignment_open": 8,
    "resource_download": 6,
    "game_launch": 8,
}
STAFF_EVENT_TYPES = ("user_login", "message_sent", "menu_click")
CONCEPTS = ("fractions", "decimals", "rhythm", "intervals", "cells", "forces", "scales", "graphs", "ratios", "chords")


@dataclass(frozen=True)
class Targets:
    """Entities of one organization worth querying, as the generator made them."""

    organization_id: str
    teacher_id: str  # teaches at least one class
    other_teacher_id: str
    teacher_admin_id: str
    teacher_admin_departments: tuple[str, ...]
    student_id: str  # enrolled in a class of teacher_id, with a streak
    other_student_id: str  # in no class of teacher_id
    department_ids: tuple[str, ...]
    course_ids: tuple[str, ...]
    class_ids: tuple[str, ...]
    assessment_ids: tuple[str, ...]


@dataclass(eq=False)  # identity hash: the model caches its index per data set
class Dataset:
    organization_ids: list[str]
    domain_events: list[dict[str, Any]]
    events: list[dict[str, Any]]
    targets: dict[str, Targets] = field(default_factory=dict)


def targets(data: Dataset, organization_id: str) -> Targets:
    """Which teacher, teacher-admin, student, courses and assessments to query in one organization."""
    return data.targets[organization_id]


def iso(moment: datetime) -> str:
    """The stored time format: `YYYY-MM-DDTHH:MM:SS.mmmZ`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def generate(
    seed: int,
    *,
    today: date,
    organizations: int = 2,
    organization_ids: list[str] | None = None,
    students: int = 37,
    courses: int = 6,
    enrollments: int = 120,
) -> Dataset:
    """The data set of `organizations` organizations (or of `organization_ids`), deterministic for `seed`."""
    rng = random.Random(seed)
    org_ids = organization_ids or [f"org_a{seed}_{n}" for n in range(1, organizations + 1)]
    end = datetime.combine(today, time(0), UTC)
    builders = [
        _Organization(rng, org_id, end, students=students, courses=courses, enrollments=enrollments) for org_id in org_ids
    ]
    # reference entities first, then every fact in time order (organizations interleaved)
    facts = sorted(
        (fact[:2] + (n,) + fact[2:] for n, builder in enumerate(builders) for fact in builder.facts), key=lambda f: f[:4]
    )
    events = sorted((event for builder in builders for event in builder.events), key=lambda e: (e["timestamp"], e["event_id"]))
    return Dataset(
        organization_ids=list(org_ids),
        domain_events=[payload for *_, payload in facts],
        events=events,
        targets={builder.org: builder.targets() for builder in builders},
    )


@dataclass
class _Enrollment:
    user: str
    course: str
    class_id: str | None
    at: datetime
    fate: str  # not_started, active, dropped, completed
    first: datetime | None = None  # activity span
    last: datetime | None = None


# Posting phases: reference entities first (users, then courses, then
# classes), then the facts in time order.
USERS, USER_UPDATES, COURSES, CLASSES, TIMED = range(5)


class _Organization:
    """One organization's domain events and events, built in dependency order."""

    def __init__(self, rng: random.Random, org: str, end: datetime, *, students: int, courses: int, enrollments: int) -> None:
        self.rng, self.org, self.end = rng, org, end
        self.start = end - SPAN_DAYS * DAY
        self.facts: list[tuple[int, datetime, int, dict[str, Any]]] = []
        self.events: list[dict[str, Any]] = []
        self.created: dict[str, datetime] = {}
        self.department: dict[str, str] = {}
        self.course_created: dict[str, datetime] = {}
        self.modules: dict[str, list[str]] = {}
        self.games: dict[str, list[str]] = {}
        self.class_of_course: dict[str, str] = {}
        self.teachers_of_class: dict[str, list[str]] = {}
        self.assessments: dict[str, list[str]] = {}
        self.enrollments: list[_Enrollment] = []
        self.completions: list[dict[str, Any]] = []
        self.module_completions: list[dict[str, Any]] = []
        self._users(students)
        self._courses(courses)
        self._classes()
        self._enroll(enrollments)
        for enrollment in self.enrollments:
            self._progress(enrollment)
        self._logins()
        self._unenrolled_events()
        self._quirks()
        self._streak()

    # ---- helpers -------------------------------------------------------
    def moment(self, low: datetime, high: datetime) -> datetime:
        """A uniform millisecond-precision time in [low, high)."""
        span_ms = int((high - low) / timedelta(milliseconds=1))
        return low + timedelta(milliseconds=self.rng.randrange(max(span_ms, 1)))

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def fact(
        self, phase: int, event_type: str, own_time: datetime, time_field: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        """A domain event with an eventId, its own time field and an explicit occurredAt.

        occurredAt trails the own time by up to a minute and a half, so a
        reader that takes the wrong one is caught."""
        occurred = own_time + timedelta(milliseconds=self.rng.randrange(90_000)) if time_field else own_time
        payload = {"eventType": event_type, "eventId": self.uuid(), "organizationId": self.org, "occurredAt": iso(occurred)}
        if time_field:
            payload[time_field] = iso(own_time)
        payload.update({name: value for name, value in fields.items() if value is not None})
        self.facts.append((phase, own_time, len(self.facts), payload))
        return payload

    def event(self, event_type: str, user: str, at: datetime, **properties: Any) -> dict[str, Any]:
        payload = {
            "event_id": self.uuid(),
            "event_type": event_type,
            "timestamp": iso(at),
            "user_id": user,
            "session_id": f"sess_{self.rng.getrandbits(48):012x}",
            "organization_id": self.org,
            "device_info": {
                "platform": self.rng.choice(("desktop", "mobile", "tablet")),
                "browser": "chrome",
                "version": "120.0",
            },
            "context": {"page_url": f"/app/{event_type}"},
            "properties": {name: value for name, value in properties.items() if value is not None},
            "privacy_level": "standard",
        }
        self.events.append(payload)
        return payload

    def maybe(self, probability: float, value: Any) -> Any:
        return value if self.rng.random() < probability else None

    # ---- reference entities -------------------------------------------
    def _users(self, students: int) -> None:
        staff = [
            (TEACHERS[0], "teacher", DEPARTMENTS[0]),
            (TEACHERS[1], "teacher", DEPARTMENTS[1]),
            (TEACHER_ADMIN, "teacher-admin", DEPARTMENTS[0]),
        ]
        for user, role, department in staff:
            self._create_user(user, role, department, self.start - self.rng.randint(30, 200) * DAY)
        for n in range(1, students + 1):
            # about half existed before the window, the others join during it: total_users moves
            created = (
                self.start - self.rng.randint(1, 120) * DAY
                if self.rng.random() < 0.55
                else self.start + self.rng.randint(0, 300) * DAY
            )
            self._create_user(f"usr_s{n:03d}", "student", self.rng.choice(DEPARTMENTS), self.moment(created, created + DAY))
        for user in self.rng.sample(sorted(u for u in self.created if u.startswith("usr_s")), 3):
            department = self.rng.choice([d for d in DEPARTMENTS if d != self.department[user]])
            at = self.moment(self.created[user] + DAY, self.end - DAY)
            self.fact(USER_UPDATES, "UserUpdated", at, userId=user, departmentId=department)
            self.department[user] = department

    def _create_user(self, user: str, role: str, department: str, at: datetime) -> None:
        self.created[user], self.department[user] = at, department
        self.fact(USERS, "UserCreated", at, userId=user, role=role, departmentId=department)

    def _courses(self, count: int) -> None:
        for n in range(1, count + 1):
            course = f"crs_{n:02d}"
            # two courses appear during the window, so total_courses moves
            at = (
                self.start - self.rng.randint(10, 100) * DAY
                if n <= count - 2
                else self.start + (90 if n == count - 1 else 240) * DAY
            )
            at = self.moment(at, at + DAY)
            self.course_created[course] = at
            contents = [item for m in range(1, self.rng.randint(2, 5) + 1) for item in self._module_contents(n, m)]
            self.fact(COURSES, "CourseCreated", at, courseId=course, title=f"Course {n}", category="general", contents=contents)
            self.assessments[course] = [f"asm_{n:02d}_final"] + ([f"asm_{n:02d}_quiz"] if n % 2 else [])
        updated = self.rng.choice(sorted(self.course_created)[: count - 2])
        self._add_module(updated)

    def _module_contents(self, course_number: int, module_number: int) -> list[dict[str, Any]]:
        course, module = f"crs_{course_number:02d}", f"mod_{course_number:02d}_{module_number}"
        game = f"G-{course_number:02d}{module_number}00"  # the same game ids in every organization: a shared registry
        self.modules.setdefault(course, []).append(module)
        self.games.setdefault(course, []).append(game)
        items = [{"gameId": game, "stageId": f"{game}-quiz", "moduleId": module, "contentType": "game"}]
        if self.rng.random() < 0.6:
            kind = self.rng.choice(("video", "document", "quiz"))
            items.append({"contentId": f"cnt_{course_number:02d}_{module_number}", "moduleId": module, "contentType": kind})
        return items

    def _add_module(self, course: str) -> None:
        """One CourseContentsUpdated: the course gains a module, listed after the others."""
        number = int(course.split("_")[1])
        before = [item for m in range(1, len(self.modules[course]) + 1) for item in self._contents_again(number, m)]
        added = self._module_contents(number, len(self.modules[course]) + 1)
        at = self.moment(self.start + 150 * DAY, self.start + 200 * DAY)
        self.fact(TIMED, "CourseContentsUpdated", at, courseId=course, contents=before + added)

    def _contents_again(self, course_number: int, module_number: int) -> list[dict[str, Any]]:
        game = f"G-{course_number:02d}{module_number}00"
        return [
            {
                "gameId": game,
                "stageId": f"{game}-quiz",
                "moduleId": f"mod_{course_number:02d}_{module_number}",
                "contentType": "game",
            }
        ]

    def _classes(self) -> None:
        early = sorted(self.course_created)[:4]
        teachers = [[TEACHERS[0]], [TEACHERS[0]], [TEACHERS[1]], [TEACHERS[0]]]
        for n, (course, teacher_ids) in enumerate(zip(self.rng.sample(early, 4), teachers, strict=True), start=1):
            class_id = f"cls_{n}"
            at = self.course_created[course] + DAY
            department = self.rng.choice(DEPARTMENTS)
            self.fact(
                CLASSES, "ClassCreated", at, classId=class_id, courseId=course, departmentId=department, teacherIds=teacher_ids
            )
            self.class_of_course[course], self.teachers_of_class[class_id] = class_id, teacher_ids
        # the last class changes hands: its first teacher no longer sees its students
        self.fact(CLASSES, "ClassUpdated", self.start - DAY, classId="cls_4", teacherIds=[TEACHERS[1]])
        self.teachers_of_class["cls_4"] = [TEACHERS[1]]

    # ---- enrollments and progress --------------------------------------
    def _enroll(self, count: int) -> None:
        students = sorted(u for u in self.created if u.startswith("usr_s"))
        pairs = [(user, course) for user in students for course in sorted(self.course_created)]
        self.rng.shuffle(pairs)
        for user, course in pairs:
            if len(self.enrollments) == count:
                break
            low = max(self.created[user], self.course_created[course], self.start) + HOUR
            high = self.end - 2 * DAY
            if low < high:
                self._enroll_one(user, course, self.moment(low, high))

    def _enroll_one(self, user: str, course: str, at: datetime) -> None:
        class_id = self.class_of_course.get(course) if self.rng.random() < 0.75 else None
        roll = self.rng.random()
        fate = "not_started" if roll < 0.12 else "completed" if roll < 0.40 else "dropped" if roll < 0.65 else "active"
        if (fate == "dropped" and at > self.end - 40 * DAY) or (fate == "completed" and at > self.end - 10 * DAY):
            fate = "active"  # too recent to have dropped or finished
        enrollment = _Enrollment(user, course, class_id, at, fate)
        self.enrollments.append(enrollment)
        self.fact(
            TIMED,
            "UserEnrolled",
            at,
            "enrolledAt",
            userId=user,
            courseId=course,
            classId=class_id,
            enrollmentId=f"enr_{user}_{course}",
        )

    def _progress(self, enrollment: _Enrollment) -> None:
        if enrollment.fate == "not_started":
            return
        first = enrollment.at + HOUR
        if enrollment.fate == "dropped":
            last = self.moment(first + HOUR, min(first + 150 * DAY, self.end - 32 * DAY))
        elif enrollment.fate == "completed":
            last = self.moment(first + HOUR, min(first + 120 * DAY, self.end - 3 * DAY))
        else:
            last = self.moment(max(first + HOUR, self.end - 25 * DAY), self.end - HOUR)
        enrollment.first, enrollment.last = first, last
        self._module_completions(enrollment)
        for _ in range(self.rng.randint(3, 14)):
            self._course_event(enrollment, self.moment(first, last))
        self._course_event(enrollment, last)
        self._attempts(enrollment)

    def _module_completions(self, enrollment: _Enrollment) -> None:
        modules = self.modules[enrollment.course]
        done = len(modules) if enrollment.fate == "completed" else self.rng.randint(0, len(modules) - 1)
        times = sorted(self.moment(enrollment.first, enrollment.last) for _ in range(done))
        for module, at in zip(modules, times, strict=False):
            score = self.maybe(0.8, self.rng.randint(30, 100))
            fact = self.fact(
                TIMED,
                "ModuleCompleted",
                at,
                "completedAt",
                userId=enrollment.user,
                courseId=enrollment.course,
                moduleId=module,
                score=score,
            )
            self.module_completions.append(fact)
        if enrollment.fate == "completed":
            at = self.moment(enrollment.last, enrollment.last + 2 * DAY)
            final = self.rng.randint(50, 99) + self.rng.choice((0, 0, 0.5))
            self.completions.append(
                self.fact(
                    TIMED,
                    "UserCompletedCourse",
                    at,
                    "completedAt",
                    userId=enrollment.user,
                    courseId=enrollment.course,
                    finalScore=final,
                )
            )

    def _course_event(self, enrollment: _Enrollment, at: datetime) -> None:
        event_type = self.rng.choices(list(COURSE_EVENT_TYPES), weights=list(COURSE_EVENT_TYPES.values()))[0]
        properties = self._properties(event_type, enrollment.course)
        self.event(event_type, enrollment.user, at, course_id=enrollment.course, class_id=enrollment.class_id, **properties)

    def _properties(self, event_type: str, course: str) -> dict[str, Any]:
        """Properties valid for the type (event_properties.schema.json); integer score and duration_ms on some."""
        rng, game = self.rng, self.rng.choice(self.games[course])
        score, duration = rng.randint(0, 100), rng.randint(5_000, 1_800_000)
        if event_type == "game_stage_complete":
            return {
                "game_id": game,
                "stage_id": f"{game}-quiz",
                "score": score,
                "max_score": 100,
                "passed": score >= 60,
                "duration_ms": self.maybe(0.75, duration),
            }
        if event_type in ("game_stage_start", "game_launch"):
            return {"game_id": game, "stage_id": f"{game}-quiz"}
        if event_type == "target_met":
            return {"game_id": game, "target_score": 80, "actual_score": max(score, 80), "duration_ms": self.maybe(0.5, duration)}
        if event_type == "assignment_completed":
            return {"assignment_id": f"asg_{course}", "score": self.maybe(0.6, score), "duration_ms": self.maybe(0.6, duration)}
        if event_type == "concept_mastered":
            tags = rng.sample(CONCEPTS, rng.randint(1, 2))
            return {"concept_tags": tags, "mastery_level": "proficient", "score": self.maybe(0.3, score)}
        # user interaction: durations (time spent, not learning hours), a score now and then
        return {"duration_ms": self.maybe(0.4, duration), "score": self.maybe(0.05, score)}

    def _attempts(self, enrollment: _Enrollment) -> None:
        if self.rng.random() < 0.4:
            return
        assessment = self.rng.choice(self.assessments[enrollment.course])
        for _ in range(1 + (self.rng.random() < 0.2)):
            completed = self.moment(enrollment.first, enrollment.last)
            spent = self.rng.randint(120, 3600)
            started = completed - spent * timedelta(seconds=1)
            common = {"userId": enrollment.user, "assessmentId": assessment, "courseId": enrollment.course}
            self.fact(TIMED, "AssessmentStarted", started, "startedAt", **common)
            score = self.maybe(0.9, self.rng.randint(10, 100))
            passed = score >= 60 if score is not None else self.rng.random() < 0.5
            self.fact(
                TIMED,
                "AssessmentCompleted",
                completed,
                "completedAt",
                **common,
                score=score,
                passed=passed,
                timeSpent=self.maybe(0.9, spent),
            )

    # ---- events outside courses -----------------------------------------
    def _logins(self) -> None:
        for user, created in sorted(self.created.items()):
            staff = not user.startswith("usr_s")
            for _ in range(self.rng.randint(2, 6)):
                event_type = self.rng.choice(STAFF_EVENT_TYPES) if staff else "user_login"
                at = self.moment(max(created, self.start), self.end)
                self.event(event_type, user, at, login_method="password" if event_type == "user_login" else None)

    def _unenrolled_events(self) -> None:
        """Learners playing in a course they are not enrolled in: the course filter keeps them out of populations."""
        enrolled = {(e.user, e.course) for e in self.enrollments}
        students = sorted(u for u in self.created if u.startswith("usr_s"))
        made = 0
        while made < 5:
            user, course = self.rng.choice(students), self.rng.choice(sorted(self.course_created))
            if (user, course) in enrolled:
                continue
            at = self.moment(max(self.created[user], self.course_created[course], self.start), self.end)
            self.event("game_stage_complete", user, at, course_id=course, **self._properties("game_stage_complete", course))
            made += 1

    # ---- replays, duplicates, second completions ------------------------
    def _quirks(self) -> None:
        timed = [fact for fact in self.facts if fact[0] == TIMED]
        by_type = lambda name: [fact for fact in timed if fact[3]["eventType"] == name]  # noqa: E731
        for fact in (
            self.rng.sample(by_type("UserEnrolled"), 2)
            + self.rng.sample(by_type("AssessmentCompleted"), 2)
            + self.rng.sample(by_type("ModuleCompleted"), 2)
        ):
            self._again(fact)  # a replay: the same eventId
        for fact in (self.rng.choice(by_type("AssessmentCompleted")), self.rng.choice(by_type("UserEnrolled"))):
            del fact[3]["eventId"]  # no eventId: identity is the content
            self._again(fact)
        self._later_copy(self.rng.choice(self.completions), "completedAt", finalScore=self.rng.randint(10, 49))
        scored = [m for m in self.module_completions if "score" in m and m["completedAt"] < iso(self.end - 2 * DAY)]
        self._later_copy(self.rng.choice(scored), "completedAt", score=self.rng.randint(0, 29))
        enrolled = self.rng.choice([fact[3] for fact in by_type("UserEnrolled") if "eventId" in fact[3]])
        self._later_copy(enrolled, "enrolledAt")

    def _again(self, fact: tuple[int, datetime, int, dict[str, Any]]) -> None:
        phase, at, _, payload = fact
        self.facts.append((phase, at, len(self.facts), copy.deepcopy(payload)))

    def _later_copy(self, payload: dict[str, Any], time_field: str, **changes: Any) -> None:
        """The same fact again, later, with a new eventId and `changes`: only the earliest may count."""
        earlier = datetime.fromisoformat(payload[time_field])
        at = self.moment(earlier + HOUR, min(earlier + 20 * DAY, self.end - HOUR))
        fields = {
            k: v for k, v in payload.items() if k not in ("eventType", "eventId", "organizationId", "occurredAt", time_field)
        }
        self.fact(TIMED, payload["eventType"], at, time_field, **{**fields, **changes})

    def _streak(self) -> None:
        """The target student is active on the four days before their last active day."""
        student = self.target_student()
        last = max(datetime.fromisoformat(e["timestamp"]) for e in self.events if e["user_id"] == student)
        for back in range(1, 5):
            day = datetime.combine(last.date() - back * DAY, time(0), UTC)
            if day >= self.created[student]:
                self.event("user_login", student, self.moment(day, day + DAY), login_method="sso")

    # ---- what to query --------------------------------------------------
    def taught_students(self, teacher: str) -> set[str]:
        return {e.user for e in self.enrollments if e.class_id and teacher in self.teachers_of_class[e.class_id]}

    def target_student(self) -> str:
        """A student of the first teacher's classes with the most enrollments (ties by id)."""
        counts: dict[str, int] = {}
        for e in self.enrollments:
            counts[e.user] = counts.get(e.user, 0) + 1
        return min(self.taught_students(TEACHERS[0]), key=lambda user: (-counts[user], user))

    def targets(self) -> Targets:
        untaught = sorted(u for u in self.created if u.startswith("usr_s") and u not in self.taught_students(TEACHERS[0]))
        return Targets(
            organization_id=self.org,
            teacher_id=TEACHERS[0],
            other_teacher_id=TEACHERS[1],
            teacher_admin_id=TEACHER_ADMIN,
            teacher_admin_departments=TEACHER_ADMIN_DEPARTMENTS,
            student_id=self.target_student(),
            other_student_id=untaught[0],
            department_ids=DEPARTMENTS,
            course_ids=tuple(sorted(self.course_created)),
            class_ids=tuple(sorted(self.teachers_of_class)),
            assessment_ids=tuple(sorted(a for ids in self.assessments.values() for a in ids)),
        )
