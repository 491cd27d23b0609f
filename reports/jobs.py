"""The ReportJob lifecycle: its statuses, the transitions between them, and
the checks a new job's request passes before it exists.

    pending ──▶ queued ──▶ running ──▶ completed
       │          │          │ ├─────▶ failed ──▶ queued   (retry, by a client)
       │          │          │ └─────▶ queued              (automatic retry after backoff)
       └──────────┴──────────┴───────▶ cancelled
    running ──▶ running   a crashed worker's job, reclaimed and restarted

Anything else is a Conflict (409). The check itself is atomic in Redis
(reports/ledger.py); this module only says what is legal.
"""

from __future__ import annotations

from datetime import date, datetime

from analytics.progress import STATUSES as PROGRESS_STATUSES
from analytics.scope import Scope
from lms_events.errors import BadRequest, Forbidden
from lms_events.tokens import Role
from reports import definitions, lookups
from reports.models import ReportJobRequest

PENDING, QUEUED, RUNNING, COMPLETED, FAILED, CANCELLED = "pending", "queued", "running", "completed", "failed", "cancelled"
FINAL = frozenset({COMPLETED, FAILED, CANCELLED})

TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({QUEUED, CANCELLED}),
    QUEUED: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({RUNNING, COMPLETED, FAILED, CANCELLED, QUEUED}),
    FAILED: frozenset({QUEUED}),
    COMPLETED: frozenset(),
    CANCELLED: frozenset(),
}

# The only report a student may run, and only about themselves.
STUDENT_REPORT = "learner-transcript"


def sources_of(target: str) -> tuple[str, ...]:
    """The statuses from which `target` may be reached."""
    return tuple(status for status, targets in TRANSITIONS.items() if target in targets)


def checked_request(request: ReportJobRequest, scope: Scope) -> ReportJobRequest:
    """Every enum field against the lookup values, the date range, and what the role may ask for."""
    lookups.check("report-type", request.report_type, "reportType")
    lookups.check("report-priority", request.priority, "priority")
    lookups.check("report-visibility", request.visibility, "visibility")
    lookups.check("output-format", request.output.format, "output.format")
    parameters = request.parameters
    lookups.check_all("dimension", parameters.group_by or (), "parameters.groupBy")
    lookups.check_all("measure-type", parameters.measures or (), "parameters.measures")
    filters = parameters.filters
    if filters is not None:
        lookups.check_all(lookups.EVENT_TYPE, filters.event_types or (), "parameters.filters.eventTypes")
        for n, status in enumerate(filters.statuses or ()):
            if status not in PROGRESS_STATUSES:
                raise BadRequest(
                    f"parameters.filters.statuses[{n}] must be one of {', '.join(PROGRESS_STATUSES)}; got {status!r}",
                    field=f"parameters.filters.statuses[{n}]",
                )
    if parameters.date_range is not None:
        start = _day(parameters.date_range.start_date, "parameters.dateRange.startDate")
        if start > _day(parameters.date_range.end_date, "parameters.dateRange.endDate"):
            raise BadRequest("parameters.dateRange.startDate must not be after endDate", field="parameters.dateRange")
    if parameters.due_date is not None:
        _day(parameters.due_date, "parameters.dueDate")
    if request.scheduled_for is not None:
        try:
            datetime.fromisoformat(request.scheduled_for.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"scheduledFor is not a real instant: {request.scheduled_for!r}", field="scheduledFor") from None
    if request.report_type == "compliance":
        if not (filters and filters.course_ids):
            raise BadRequest("a compliance report names its required courses", field="parameters.filters.courseIds")
        if parameters.due_date is None:
            raise BadRequest("a compliance report names the due date", field="parameters.dueDate")
    definitions.check(request.report_type, parameters)
    if request.visibility == "department" and request.department_id is None:
        raise BadRequest("visibility department needs a departmentId", field="departmentId")
    if scope.role is Role.STUDENT:
        _student_may(request, scope)
    return request


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{field} is not a real day: {value!r}", field=field) from None


def _student_may(request: ReportJobRequest, scope: Scope) -> None:
    if request.report_type != STUDENT_REPORT:
        raise Forbidden(f"a student may only run {STUDENT_REPORT} reports", field="reportType")
    learners = (request.parameters.filters.learner_ids if request.parameters.filters else None) or []
    if any(learner != scope.sub for learner in learners):
        raise Forbidden("a student may only run reports about themselves", field="parameters.filters.learnerIds")
    if request.visibility != "private":
        raise Forbidden("a student's reports are private", field="visibility")
