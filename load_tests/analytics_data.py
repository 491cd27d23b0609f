"""The analytics benchmark's data set, generated straight into ClickHouse by SQL.

5 organizations of 2,000 users and 200 courses each (10,000 users, 1,000
courses); organization `bench-org-0` is the one whose figures are read.
Every value is a deterministic expression of a row number, so the Python
helpers below (who is in which department, class, course) name the same
people the SQL created.

- UserCreated: every user, with a department (10 per organization),
  created over the first 200 days.
- CourseCreated: 4-8 modules each; ClassCreated: 2 classes per course,
  each taught by one of 40 teachers of the organization.
- UserEnrolled: 100,000 (10 courses a user, each with one of its classes),
  over the first 350 days.
- ModuleCompleted: the first m modules of an enrollment; a third of the
  enrollments complete every module and the course (UserCompletedCourse
  with a finalScore).
- AssessmentCompleted: 200,000 attempts over 3 assessments per course
  (scores on 16 of 17, passed at >= 60, timeSpent).
- Events: N rows through `event_loads` (so `events` and the activity
  rollups fill as the sink fills them), 1/10,000 of them per user, in
  sessions of 10 events on ~100 active days per user (at 10M) spread over
  400 days ending today; a session works on one enrolled course. Types:
  learning progress (game stage start/complete, concept mastered,
  assignment completed) and interaction (game launch, assignment open,
  page exit, menu click); a score on 30 % of events, a duration on 40 %.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

ORGANIZATIONS = 5
USERS_PER_ORG = 2_000
COURSES_PER_ORG = 200
USERS = ORGANIZATIONS * USERS_PER_ORG
COURSES = ORGANIZATIONS * COURSES_PER_ORG
ENROLLMENTS_PER_USER = 10
ENROLLMENTS = USERS * ENROLLMENTS_PER_USER
ATTEMPTS = 200_000
DEPARTMENTS_PER_ORG = 10
TEACHERS_PER_ORG = 40
CLASSES_PER_COURSE = 2
ASSESSMENTS_PER_COURSE = 3
COURSES_PER_DEPARTMENT = COURSES_PER_ORG // DEPARTMENTS_PER_ORG
DAYS = 400
EVENTS_PER_SESSION = 10
EVENT_CHUNK = 1_000_000

BIG_ORG = "bench-org-0"


def organization(u: int) -> str:
    return f"bench-org-{u // USERS_PER_ORG}"


def first_day(today: date) -> date:
    return today - timedelta(days=DAYS - 1)


# --- The people of the read organization, as the SQL below makes them -------------------------

def department(u: int) -> str:
    return f"dep_{u // USERS_PER_ORG}_{u % USERS_PER_ORG % DEPARTMENTS_PER_ORG}"


def enrolled_course(u: int, j: int) -> int:
    """The global course index of user u's j-th enrollment."""
    local_user = u % USERS_PER_ORG
    local = local_user % DEPARTMENTS_PER_ORG + DEPARTMENTS_PER_ORG * ((local_user * 7 + j * 3) % COURSES_PER_DEPARTMENT)
    return u // USERS_PER_ORG * COURSES_PER_ORG + local


def class_half(u: int) -> int:
    return u % USERS_PER_ORG // DEPARTMENTS_PER_ORG % CLASSES_PER_COURSE


def teacher_of(c: int, half: int) -> str:
    return f"tch_{c // COURSES_PER_ORG}_{(c % COURSES_PER_ORG * CLASSES_PER_COURSE + half) % TEACHERS_PER_ORG}"


def users_of_departments(departments: set[str]) -> list[str]:
    return [f"usr_{u}" for u in range(USERS_PER_ORG) if department(u) in departments]


def students_of(teacher: str) -> list[str]:
    return [
        f"usr_{u}"
        for u in range(USERS_PER_ORG)
        if any(teacher_of(enrolled_course(u, j), class_half(u)) == teacher for j in range(ENROLLMENTS_PER_USER))
    ]


def courses_of(users: list[str]) -> list[str]:
    indexes = sorted({enrolled_course(int(user[4:]), j) for user in users for j in range(ENROLLMENTS_PER_USER)})
    return [f"crs_{c}" for c in indexes]


def assessments_of(courses: list[str]) -> list[str]:
    return [f"asm_{course[4:]}_{i}" for course in courses for i in range(ASSESSMENTS_PER_COURSE)]


# --- SQL ---------------------------------------------------------------------------------------

def _common(today: date) -> dict[str, str]:
    start = datetime.combine(first_day(today), datetime.min.time(), tzinfo=UTC)
    return {"start": start.strftime("%Y-%m-%d %H:%M:%S")}


_START = "toDateTime64({start:String}, 3, 'UTC')"
_ORG_OF_USER = f"concat('bench-org-', toString(intDiv(u, {USERS_PER_ORG})))"
_LOCAL_USER = f"(u % {USERS_PER_ORG})"
_USER_CREATED = f"{_START} + toIntervalDay(({_LOCAL_USER} * 13) % 200)"
def _course(j: str) -> str:
    """The global course index of user u's j-th enrollment: courses of the user's department."""
    return (f"intDiv(u, {USERS_PER_ORG}) * {COURSES_PER_ORG} + {_LOCAL_USER} % {DEPARTMENTS_PER_ORG} "
            f"+ {DEPARTMENTS_PER_ORG} * (({_LOCAL_USER} * 7 + {j} * 3) % {COURSES_PER_DEPARTMENT})")


# enrollment k: user u = k % USERS, its j-th course (j = k / USERS), class half, time
_ENROLLMENT = f"""
    k % {USERS} AS u, intDiv(k, {USERS}) AS j,
    {_course("j")} AS c,
    intDiv({_LOCAL_USER}, {DEPARTMENTS_PER_ORG}) % {CLASSES_PER_COURSE} AS half,
    {_ORG_OF_USER} AS org,
    4 + c % 5 AS n_modules,
    {_USER_CREATED} + toIntervalDay((k * 7919) % 150) + toIntervalSecond(k % 86400) AS enrolled_at"""

FACT_COLUMNS = (
    "organization_id, event_type, fact_id, occurred_at, user_id, course_id, class_id, module_id, assessment_id, "
    "department_id, score, passed, time_spent_s, module_ids, teacher_ids, role, payload, _version"
)


def fact_statements(today: date) -> list[tuple[str, str, dict[str, str]]]:
    """(what, INSERT ... SELECT, params) for every domain fact family."""
    params = _common(today)
    fact = f"INSERT INTO domain_facts ({FACT_COLUMNS}) SELECT "
    users = f"""{fact}
        {_ORG_OF_USER}, 'UserCreated', concat('uc-', toString(u)), {_USER_CREATED}, concat('usr_', toString(u)), '', '', '', '',
        concat('dep_', toString(intDiv(u, {USERS_PER_ORG})), '_', toString({_LOCAL_USER} % {DEPARTMENTS_PER_ORG})),
        NULL, NULL, NULL, [], [], 'student', '{{}}', 1
        FROM (SELECT number AS u FROM numbers({USERS}))"""
    courses = f"""{fact}
        concat('bench-org-', toString(intDiv(c, {COURSES_PER_ORG}))), 'CourseCreated', concat('cc-', toString(c)),
        {_START} - toIntervalDay(60) + toIntervalDay(c % 100), '', concat('crs_', toString(c)), '', '', '', '',
        NULL, NULL, NULL, arrayMap(i -> concat('mod_', toString(c), '_', toString(i)), range(4 + c % 5)), [], '', '{{}}', 1
        FROM (SELECT number AS c FROM numbers({COURSES}))"""
    classes = f"""{fact}
        concat('bench-org-', toString(intDiv(c, {COURSES_PER_ORG}))), 'ClassCreated', concat('kc-', toString(c), '-', toString(half)),
        {_START} - toIntervalDay(60), '', concat('crs_', toString(c)), concat('cls_', toString(c), '_', toString(half)), '', '', '',
        NULL, NULL, NULL, [],
        [concat('tch_', toString(intDiv(c, {COURSES_PER_ORG})), '_',
                toString(((c % {COURSES_PER_ORG}) * {CLASSES_PER_COURSE} + half) % {TEACHERS_PER_ORG}))], '', '{{}}', 1
        FROM (SELECT intDiv(number, {CLASSES_PER_COURSE}) AS c, number % {CLASSES_PER_COURSE} AS half
              FROM numbers({COURSES * CLASSES_PER_COURSE}))"""
    enrollments = f"""{fact}
        org, 'UserEnrolled', concat('ue-', toString(k)), enrolled_at, concat('usr_', toString(u)), concat('crs_', toString(c)),
        concat('cls_', toString(c), '_', toString(half)), '', '', '', NULL, NULL, NULL, [], [], '', '{{}}', 1
        FROM (SELECT number AS k, {_ENROLLMENT} FROM numbers({ENROLLMENTS}))"""
    # A third of the enrollments complete every module and then the course; the others stop after k/3 % n.
    completed_modules = "if(k % 3 = 0, n_modules, intDiv(k, 3) % n_modules)"
    modules = f"""{fact}
        org, 'ModuleCompleted', concat('mc-', toString(k), '-', toString(m)),
        enrolled_at + toIntervalDay((m + 1) * 2) + toIntervalSecond((k * 31 + m) % 86400),
        concat('usr_', toString(u)), concat('crs_', toString(c)), '', concat('mod_', toString(c), '_', toString(m)), '', '',
        if((k + m) % 4 = 0, NULL, toFloat64(40 + (k * 7 + m * 11) % 61)), NULL, NULL, [], [], '', '{{}}', 1
        FROM (SELECT number AS k, {_ENROLLMENT}, arrayJoin(range({completed_modules})) AS m FROM numbers({ENROLLMENTS}))"""
    completions = f"""{fact}
        org, 'UserCompletedCourse', concat('cp-', toString(k)),
        enrolled_at + toIntervalDay((n_modules + 1) * 2 + k % 5) + toIntervalSecond(k % 3600),
        concat('usr_', toString(u)), concat('crs_', toString(c)), '', '', '', '',
        toFloat64(50 + k % 50), NULL, NULL, [], [], '', '{{}}', 1
        FROM (SELECT number AS k, {_ENROLLMENT} FROM numbers({ENROLLMENTS})) WHERE k % 3 = 0"""
    attempts = f"""{fact}
        org, 'AssessmentCompleted', concat('ac-', toString(a)),
        enrolled_at + toIntervalDay(a % 40) + toIntervalSecond((a * 17) % 86400),
        concat('usr_', toString(u)), concat('crs_', toString(c)), '', '',
        concat('asm_', toString(c), '_', toString((intDiv(a, {ENROLLMENTS}) + k) % {ASSESSMENTS_PER_COURSE})), '',
        if(a % 17 = 0, NULL, toFloat64((a * 37) % 101)), (a * 37) % 101 >= 60, toFloat64(60 + (a * 13) % 1200),
        [], [], '', '{{}}', 1
        FROM (SELECT number AS a, number % {ENROLLMENTS} AS k, {_ENROLLMENT} FROM numbers({ATTEMPTS}))"""
    return [
        ("UserCreated", users, params),
        ("CourseCreated", courses, params),
        ("ClassCreated", classes, params),
        ("UserEnrolled", enrollments, params),
        ("ModuleCompleted", modules, params),
        ("UserCompletedCourse", completions, params),
        ("AssessmentCompleted", attempts, params),
    ]


EVENT_COLUMNS = (
    "event_id, event_type, event_category, timestamp, received_at, organization_id, user_id, session_id, "
    "privacy_level, retention_days, platform, device_info, context, properties, course_id, class_id, enrollment_id, "
    "department_id, user_role, content_type, score, duration_ms, enrichment_missing, _version, _sign"
)
# One session of 10 events: position n % 10 -> type (learning progress or interaction).
_TYPES = [
    ("game_launch", "user_interaction"),
    ("game_stage_start", "learning_progress"),
    ("game_stage_complete", "learning_progress"),
    ("game_stage_start", "learning_progress"),
    ("game_stage_complete", "learning_progress"),
    ("concept_mastered", "learning_progress"),
    ("assignment_open", "user_interaction"),
    ("assignment_completed", "learning_progress"),
    ("page_exit", "user_interaction"),
    ("menu_click", "user_interaction"),
]
_SCORED = "(p IN (2, 4, 7))"
_TIMED = "(p IN (2, 4, 7, 8))"


def event_statements(today: date, total: int) -> list[tuple[int, str, dict[str, str]]]:
    """(rows, INSERT INTO event_loads ... SELECT, params), in chunks of EVENT_CHUNK rows."""
    params = _common(today)
    sessions = max(1, math.ceil(total / USERS / EVENTS_PER_SESSION))  # sessions per user
    slot = max(1, DAYS // sessions)  # each session has its own slot of days, so active days are distinct
    types = "[" + ", ".join(f"'{t}'" for t, _ in _TYPES) + "]"
    categories = "[" + ", ".join(f"'{c}'" for _, c in _TYPES) + "]"
    statements = []
    for offset in range(0, total, EVENT_CHUNK):
        rows = min(EVENT_CHUNK, total - offset)
        sql = f"""
            INSERT INTO event_loads ({EVENT_COLUMNS})
            SELECT concat('evt_', leftPad(lower(hex(i)), 16, '0')), {types}[p + 1], {categories}[p + 1],
                   ts, ts + toIntervalSecond(1), {_ORG_OF_USER}, concat('usr_', toString(u)),
                   concat('sess_', toString(u), '_', toString(s)), 'standard', 2555, 'web', '{{}}', '{{}}',
                   if(p = 5, concat('{{"concept_tags":["skill_', toString(h % 40), '","skill_', toString(h % 7), '"]}}'), '{{}}'),
                   concat('crs_', toString(c)), concat('cls_', toString(c), '_', toString(half)), '',
                   concat('dep_', toString(intDiv(u, {USERS_PER_ORG})), '_', toString({_LOCAL_USER} % {DEPARTMENTS_PER_ORG})),
                   'student', 'game',
                   if({_SCORED}, toFloat32(h % 101), NULL),
                   if({_TIMED}, toUInt64(if(p = 8, 1000 + h % 120000, 5000 + h % 600000)), NULL),
                   [], 1, 1
            FROM (
                SELECT number AS i, i % {USERS} AS u, intDiv(i, {USERS}) AS n, intDiv(n, {EVENTS_PER_SESSION}) AS s,
                       n % {EVENTS_PER_SESSION} AS p, cityHash64(i) AS h,
                       {_course(f"(cityHash64(u, s, 2) % {ENROLLMENTS_PER_USER})")} AS c,
                       intDiv({_LOCAL_USER}, {DEPARTMENTS_PER_ORG}) % {CLASSES_PER_COURSE} AS half,
                       (s % {sessions}) * {slot} + cityHash64(c, half, s) % {slot} AS day,
                       {_START} + toIntervalDay(day) + toIntervalSecond(cityHash64(u, s, 1) % 82800 + p * 60)
                           + toIntervalMillisecond(h % 1000) AS ts
                FROM numbers({offset}, {rows})
            )"""
        statements.append((rows, sql, params))
    return statements
