"""The analytics API's answers as msgspec Structs: the one definition of
their shape. Handlers pass each computed answer through `msgspec.convert`
(an answer that drifts from its model fails there, loudly) and encode the
Struct; `lms_events.openapi` derives the document's schemas from the same
classes, so the document cannot describe something the API does not send.

Field names are camelCase on the wire (the seed's names); figures follow
METRICS.md: rounded to 2 decimals, null where a mean has nothing to average.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from analytics.dashboard import CHART_METRICS, METRIC_TYPES
from analytics.params import TIMEFRAMES
from analytics.progress import STATUSES

# Wire forms of times, checked by pattern so a drift in the query modules
# (another precision, a missing Z) fails the conversion instead of shipping.
Timestamp = Annotated[
    str,
    Meta(
        pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$",
        description="UTC instant, ISO 8601 with milliseconds and Z",
        extra_json_schema={"format": "date-time"},
    ),
]
Day = Annotated[
    str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", description="UTC day", extra_json_schema={"format": "date"})
]
IsoWeek = Annotated[str, Meta(pattern=r"^\d{4}-W\d{2}$", description="ISO week, e.g. 2026-W05")]
Percent = Annotated[float, Meta(ge=0, le=100, description="percent, 0-100")]
Count = Annotated[int, Meta(ge=0)]
# Enumerations from the constants the query modules use: one list each.
Timeframe = Literal[tuple(TIMEFRAMES)]  # type: ignore[valid-type]
MetricType = Literal[METRIC_TYPES]  # type: ignore[valid-type]
ChartMetric = Literal[CHART_METRICS]  # type: ignore[valid-type]
ProgressStatus = Literal[STATUSES]  # type: ignore[valid-type]


class Model(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    """Base of every answer: camelCase names, and no field the model does not name."""


class DashboardFilters(Model, omit_defaults=True):
    """The filters the figures were computed with (absent when not given)."""

    department_id: str | None = None
    course_id: str | None = None
    class_id: str | None = None


class Metric(Model):
    """One of METRICS.md's seven figures over the window and the window before it."""

    metric_type: MetricType
    value: int | float | None
    previous_value: int | float | None
    change_percentage: float | None
    timeframe: Timeframe
    filters: DashboardFilters
    calculated_at: Timestamp


class ChartPoint(Model):
    date: Day
    value: int | float


class Chart(Model):
    """A daily series over the window, one point per day, zero-filled."""

    metric_type: ChartMetric
    points: list[ChartPoint]


class Summary(Model):
    total_events: Count
    calculated_at: Timestamp


class DashboardAnswer(Model):
    """`GET /api/v1/dashboard`."""

    metrics: list[Metric]
    charts: list[Chart]
    summary: Summary


class UserAnalytics(Model):
    """`GET /api/v1/users/{userId}/analytics`: one learner, all time."""

    user_id: str
    total_courses_enrolled: Count
    total_courses_completed: Count
    total_learning_hours: Annotated[float, Meta(ge=0, description="hours")]
    average_score: float | None
    last_active_date: Timestamp | None
    streak_days: Count
    learning_path: Annotated[list[str], Meta(description="course ids in enrollment order")]
    skills_acquired: list[str]


class TrendPoint(Model):
    week: IsoWeek
    value: Count


class ModuleFigures(Model):
    module_id: str
    completions: Count
    average_score: float | None


class DropoffPoint(Model):
    """Learners who have not completed the course and whose latest completed module is this one."""

    module_id: str
    learners: Count


class CourseAnalytics(Model):
    """`GET /api/v1/courses/{courseId}/analytics`: one course, all time, over the caller's users."""

    course_id: str
    total_enrollments: Count
    total_completions: Count
    completion_rate: Percent
    average_score: float | None
    average_time_to_complete: Annotated[float | None, Meta(description="hours from enrollment to completion")]
    enrollment_trend: Annotated[list[TrendPoint], Meta(description="enrollments per ISO week, zero-filled")]
    module_analytics: list[ModuleFigures]
    dropoff_points: list[DropoffPoint]


class AssessmentAnalytics(Model):
    """`GET /api/v1/assessments/{assessmentId}/analytics`: the attempts of the caller's users."""

    assessment_id: str
    course_id: str
    total_attempts: Count
    average_score: float | None
    pass_rate: Percent | None
    average_time_spent: Annotated[float | None, Meta(description="minutes")]
    difficulty_rating: Annotated[float, Meta(ge=0, le=1, description="1 - pass rate / 100")] | None


class ProgressItem(Model):
    """One enrollment (user, course) as of the midnight after `until`."""

    user_id: str
    course_id: str
    progress_percentage: Percent
    time_spent: Annotated[float, Meta(ge=0, description="minutes")]
    last_access_date: Timestamp
    completion_date: Timestamp | None
    score: float | None
    status: ProgressStatus


class ProgressPage(Model):
    """`GET /api/v1/learning-progress`: a page, ordered by (userId, courseId)."""

    items: list[ProgressItem]
    next_cursor: Annotated[str | None, Meta(description="pass as `cursor` for the next page; null on the last")]


class EventItem(Model):
    event_id: str
    event_type: str
    timestamp: Timestamp
    user_id: str
    course_id: Annotated[str | None, Meta(description="null when the event names none")]
    class_id: Annotated[str | None, Meta(description="null when the event names none")]
    score: float | None
    duration_ms: Annotated[int, Meta(ge=0)] | None


class EventPage(Model):
    """`GET /api/v1/events`: a page, ordered by (timestamp, eventId)."""

    items: list[EventItem]
    next_cursor: Annotated[str | None, Meta(description="pass as `cursor` for the next page; null on the last")]


class AuditItem(Model):
    at: Timestamp
    organization_id: str
    actor: Annotated[str, Meta(description="the token's sub, a write key id, or `cli`")]
    actor_role: str
    action: Annotated[str, Meta(description="read.user_analytics, export.events, keys.create, consent.change, ...")]
    subject_user_id: Annotated[str | None, Meta(description="whose data, when one user's")]
    target: str
    detail: dict[str, Any]
    client_ip: Annotated[str, Meta(description="truncated (IPv4 /24, IPv6 /48)")]
    request_id: str


class AuditPage(Model):
    """`GET /api/v1/audit`: a page, newest first."""

    items: list[AuditItem]
    next_cursor: Annotated[str | None, Meta(description="pass as `cursor` for the next page; null on the last")]


class MyConsent(Model):
    source: Annotated[Literal["record", "defaults"], Meta(description="a consent record of yours, or the defaults")]
    categories: Annotated[dict[str, bool], Meta(description="collected (true) or not, per category")]
    age_band: str | None
    parental_consent: bool | None
    updated_at: Annotated[str | None, Meta(description="when your record last changed")]


class RetentionDays(Model):
    by_privacy_level: dict[str, int]
    by_category: dict[str, int]


class DataUsage(Model):
    """`GET /api/v1/me/data-usage`: what is collected about you, how long it is kept, how many rows are held."""

    user_id: str
    organization_id: str
    consent: MyConsent
    retention_days: RetentionDays
    stored_rows: Annotated[dict[str, int], Meta(description="rows per table that name you")]
class QueryRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /api/v1/query`: one SELECT over the tables of `GET /api/v1/query/schema`."""

    sql: Annotated[str, Meta(min_length=1, description="one SELECT; `{name:Type}` marks a parameter")]
    params: Annotated[
        dict[str, str | int | float | bool | list[str | int | float | bool]],
        Meta(description="values of the query's `{name:Type}` parameters, bound and typed by ClickHouse"),
    ] = msgspec.field(default_factory=dict)
    format: Annotated[
        Literal["json", "csv", "parquet", "arrow"],
        Meta(description="json: ClickHouse JSON (meta with column types, data rows); csv with a header; Parquet; Arrow IPC stream"),
    ] = "json"


class ColumnDoc(Model):
    name: str
    type: Annotated[str, Meta(description="ClickHouse type")]
    description: str


class TableDoc(Model):
    name: str
    description: str
    columns: list[ColumnDoc]


class QueryLimits(Model):
    max_execution_time_s: float
    max_result_rows: int
    max_memory_usage_bytes: int


class QuerySchema(Model):
    """`GET /api/v1/query/schema`: the data dictionary of analyst SQL, from the tables' COMMENTs."""

    tables: list[TableDoc]
    limits: Annotated[QueryLimits, Meta(description="enforced by the engine on each query; exceeding one is 422 naming it")]


ANSWERS: tuple[type[Model], ...] = (
    DashboardAnswer,
    UserAnalytics,
    CourseAnalytics,
    AssessmentAnalytics,
    ProgressPage,
    EventPage,
    AuditPage,
    DataUsage,
    QuerySchema,
)
