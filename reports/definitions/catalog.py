"""The report types: for each, its columns at its own grain, which of them
are measures (by measure-type lookup value), the dimensions it can be
grouped by, its queries, the figures its summary shows and the chart a PDF
draws. README, "Reports: what each report holds" and "Measures and
groupBy", says the same for people.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from reports.definitions import grouped, records
from reports.definitions.request import Request

Grouped = Callable[[Request, tuple[str, ...]], str]


@dataclass(frozen=True)
class Definition:
    id: str
    # Its columns at its own grain (no groupBy), in order.
    columns: tuple[str, ...]
    query: Callable[[Request], str]
    # Summary figures over the report's rows: label -> aggregate over the staged rows.
    summary: dict[str, str]
    # (label column, value column) of the PDF's bar chart.
    chart: tuple[str, str]
    # A series over time charts its latest bars in order; the others their largest values.
    chronological: bool = False
    # measure-type lookup value -> its columns. Columns that are no measure (identifiers, a
    # record's details) are always kept; `parameters.measures` selects and orders the others.
    measures: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The groupBy the report has without one (its own grain), and the dimensions it may be grouped by.
    grain: tuple[str, ...] = ()
    dimensions: tuple[str, ...] = ()
    # The query of any other grouping, yielding the dimension columns and every grouped measure's columns.
    grouped: Grouped | None = None
    # Measures that exist only when grouped (per learner they would say 1 or 0).
    grouped_only: frozenset[str] = frozenset()
    # Measures that cannot be grouped beyond these dimensions.
    only_by: dict[str, frozenset[str]] = field(default_factory=dict)
    # One of day, week, month is required in a groupBy (a series over time).
    needs_time: bool = False

    def measure_columns(self) -> set[str]:
        return {column for columns in self.measures.values() for column in columns}


_ACTIVITY = {
    "events": ("events",),
    "active-days": ("activeDays",),
    "learning-hours": ("learningHours",),
    "average-score": ("averageScore",),
    "last-activity": ("lastActiveAt",),
    "enrollments": ("coursesEnrolled",),
    "completions": ("coursesCompleted",),
    "active-learners": ("activeLearners",),
}
_BY_ENROLLMENT = {"enrollments": grouped.ENROLLMENT_DIMENSIONS, "completions": grouped.ENROLLMENT_DIMENSIONS}
_TIME = grouped.TIME_GRAINS


def _learner_activity(r: Request, dimensions: tuple[str, ...]) -> str:
    # learners known to the organization, as the report by learner lists
    return grouped.activity(r, dimensions, known_only=True)


def _engagement_trend(r: Request, dimensions: tuple[str, ...]) -> str:
    # over the trend's days, as the report by day
    return grouped.activity(r, dimensions, known_only=False, first=records.trend_first(r))


DEFINITIONS: dict[str, Definition] = {
    definition.id: definition
    for definition in (
        Definition(
            "learner-activity",
            ("userId", "events", "activeDays", "learningHours", "averageScore", "lastActiveAt", "coursesEnrolled", "coursesCompleted"),
            records.learner_activity,
            {"Learners": "count()", "Events": "sum(events)", "Learning hours": "round(sum(learningHours), 2)"},
            ("userId", "events"),
            measures=_ACTIVITY,
            grain=("learner",),
            dimensions=("learner", "course", "class", "department", *_TIME),
            grouped=_learner_activity,
            grouped_only=frozenset({"active-learners"}),
            only_by=_BY_ENROLLMENT,
        ),
        Definition(
            "course-completion",
            ("courseId", "enrollments", "completions", "completionRate", "averageScore", "averageHoursToComplete"),
            records.course_completion,
            {"Courses": "count()", "Enrollments": "sum(enrollments)", "Completions": "sum(completions)"},
            ("courseId", "completionRate"),
            measures={
                "enrollments": ("enrollments",), "completions": ("completions",), "completion-rate": ("completionRate",),
                "average-score": ("averageScore",), "time-to-complete": ("averageHoursToComplete",),
            },  # fmt: skip
            grain=("course",),
            dimensions=("course", "department"),
            grouped=grouped.completion,
        ),
        Definition(
            "assessment-results",
            ("assessmentId", "courseId", "attempts", "averageScore", "passRate", "averageMinutesSpent", "difficultyRating"),
            records.assessment_results,
            {"Assessments": "count()", "Attempts": "sum(attempts)"},
            ("assessmentId", "passRate"),
            # difficultyRating is the pass rate on another scale (1 - passRate / 100): they go together
            measures={
                "attempts": ("attempts",), "average-score": ("averageScore",),
                "pass-rate": ("passRate", "difficultyRating"), "time-spent": ("averageMinutesSpent",),
            },  # fmt: skip
            grain=("assessment",),
            dimensions=("assessment", "course", "learner", "department", *_TIME),
            grouped=grouped.assessments,
        ),
        Definition(
            "learner-transcript",
            ("userId", "courseId", "enrolledAt", "status", "progressPercentage", "timeSpentMinutes", "lastAccessDate", "completionDate", "finalScore"),
            records.learner_transcript,
            {"Courses": "count()", "Completed": "countIf(status = 'completed')"},
            ("courseId", "progressPercentage"),
        ),
        Definition(
            "department-summary",
            ("departmentId", "learners", "activeLearners", "enrollments", "completions", "learningHours"),
            records.department_summary,
            {"Departments": "count()", "Learners": "sum(learners)", "Active learners": "sum(activeLearners)"},
            ("departmentId", "activeLearners"),
            measures={
                "active-learners": ("activeLearners",), "enrollments": ("enrollments",),
                "completions": ("completions",), "learning-hours": ("learningHours",),
            },  # fmt: skip
            grain=("department",),
            dimensions=("department",),
        ),
        Definition(
            "engagement-trend",
            ("date", "events", "activeLearners", "learningHours"),
            records.engagement_trend,
            {"Days": "count()", "Events": "sum(events)", "Learning hours": "round(sum(learningHours), 2)"},
            ("date", "events"),
            chronological=True,
            measures={
                "events": ("events",), "active-learners": ("activeLearners",), "learning-hours": ("learningHours",),
                "active-days": ("activeDays",), "average-score": ("averageScore",),
            },  # fmt: skip
            grain=("day",),
            dimensions=(*_TIME, "course", "class", "department"),
            grouped=_engagement_trend,
            grouped_only=frozenset({"active-days", "average-score"}),
            needs_time=True,
        ),
        Definition(
            "content-usage",
            ("courseId", "eventType", "events", "activeLearners"),
            lambda r: grouped.content(r, ("course", "event-type")),
            {"Rows": "count()", "Events": "sum(events)"},
            ("concat(toString(courseId), ' / ', toString(eventType))", "events"),
            measures={"events": ("events",), "active-learners": ("activeLearners",), "active-days": ("activeDays",)},
            grain=("course", "event-type"),
            dimensions=("course", "event-type", "learner", "department", *_TIME),
            grouped=grouped.content,
            grouped_only=frozenset({"active-days"}),
        ),
        Definition(
            "at-risk-learners",
            ("userId", "courseId", "enrolledAt", "status", "progressPercentage", "lastAccessDate", "daysInactive",
             "earlierAverageScore", "recentAverageScore", "reason"),  # fmt: skip
            records.at_risk_learners,
            {"Enrollments at risk": "count()", "Learners": "uniqExact(userId)", "Falling scores": "countIf(reason != 'inactive')"},
            ("userId", "daysInactive"),
        ),
        Definition(
            "compliance",
            ("userId", "courseId", "enrolledAt", "completedAt", "status", "compliant"),
            records.compliance,
            {"Required completions": "count()", "On time": "countIf(compliant)", "Missing": "countIf(status = 'not-completed')"},
            ("courseId", "compliant"),
        ),
    )
}
