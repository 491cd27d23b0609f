"""Report schedules (report seed API-ISS-028): the checks a schedule
passes, its recurrence, and its storage in `report_schedules`.

A schedule names a template (whose definition is copied into it when it
is saved, so editing a shared template never changes someone's running
schedule) or carries its definition inline, and is checked as the job it
creates, with its owner's scope. Its timing is a 5-field cron expression
or a lookup frequency (`schedule-frequency`), in an IANA timezone, between
startDate and endDate (local days, both included). Visibility and who may
change it are the jobs' rules (reports/visibility.py).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import msgspec
import pyarrow as pa

from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import BadRequest
from lms_events.tokens import Role
from reports import jobs, lookups
from reports.definitions import DEFINITIONS
from reports.ledger import instant, now_iso
from reports.models import ReportJobRequest
from reports.plan_models import Definition, ReportSchedule, ReportScheduleRequest, ReportTemplate
from reports.plan_store import TIME, Documents
from reports.recurrence import Recurrence, checked_cron, frequency_cron, wall_time, zone
from reports.visibility import readable, require_manager

TABLE = "report_schedules"
ONCE = "once"
COLUMNS: dict[str, pa.DataType] = {
    "organization_id": pa.string(), "schedule_id": pa.string(), "version": pa.uint64(), "deleted": pa.uint8(),
    "name": pa.string(), "enabled": pa.uint8(), "report_type": pa.string(), "template_id": pa.string(),
    "owner_id": pa.string(), "owner_role": pa.string(), "owner_departments": pa.list_(pa.string()),
    "visibility": pa.string(), "department_id": pa.string(), "active_since": TIME, "created_at": TIME,
    "updated_at": TIME, "body": pa.string(),
}  # fmt: skip
# What changes when a schedule fires: an edit of these starts counting occurrences anew (activeSince).
TIMING_FIELDS = ("cron_expression", "frequency", "time_of_day", "day_of_week", "day_of_month", "timezone", "start_date", "end_date")


def recurrence(schedule: ReportScheduleRequest) -> Recurrence:
    """The schedule's occurrences; every part checked, a bad one a 400 naming its field."""
    if (schedule.cron_expression is None) == (schedule.frequency is None):
        raise BadRequest("a schedule has either a cronExpression or a frequency", field="cronExpression")
    tz = zone(schedule.timezone)
    at = wall_time(schedule.time_of_day, "timeOfDay")
    start = _day(schedule.start_date, "startDate")
    end = _day(schedule.end_date, "endDate")
    if start is not None and end is not None and end < start:
        raise BadRequest("endDate must not be before startDate", field="endDate")
    if schedule.cron_expression is not None:
        return Recurrence(tz, cron=checked_cron(schedule.cron_expression), start=start, end=end)
    frequency = lookups.check("schedule-frequency", schedule.frequency or "", "frequency")
    if frequency == ONCE:
        if start is None:
            raise BadRequest("a once schedule runs on startDate at timeOfDay: name startDate", field="startDate")
        return Recurrence(tz, once=datetime.combine(start, at), start=start, end=end)
    return Recurrence(tz, cron=frequency_cron(frequency, at, schedule.day_of_week, schedule.day_of_month), start=start, end=end)


def _day(value: str | None, field: str) -> date | None:
    try:
        return None if value is None else date.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{field} is not a real day: {value!r}", field=field) from None


def job_request(schedule: ReportSchedule | ReportScheduleRequest, schedule_id: str | None = None) -> ReportJobRequest:
    """The job a schedule creates (its definition, output and sharing), as the API would take it."""
    definition = schedule.definition
    assert definition is not None
    return ReportJobRequest(
        report_type=definition.report_type, name=schedule.name, description=schedule.description,
        parameters=definition.parameters, output=schedule.output or definition.output, priority=definition.priority,
        visibility=schedule.visibility, department_id=schedule.department_id, template_id=schedule.template_id,
        schedule_id=schedule_id,
    )  # fmt: skip


def runnable(request: ReportJobRequest, scope: Scope) -> ReportJobRequest:
    """A job request checked as POST /api/v1/report-jobs checks it, its type one this product generates."""
    jobs.checked_request(request, scope)
    if request.report_type not in DEFINITIONS:
        raise BadRequest(
            f"reportType {request.report_type} is not generated yet; available: {', '.join(DEFINITIONS)}", field="reportType"
        )
    return request


def checked(request: ReportScheduleRequest, scope: Scope, template: ReportTemplate | None) -> ReportScheduleRequest:
    """The schedule with its definition resolved (from the template when it names one), timing and job checked."""
    if template is not None:
        if request.definition is not None:
            raise BadRequest("a schedule has either a templateId or a definition, not both", field="definition")
        definition = Definition(
            report_type=template.report_type, parameters=template.parameters, output=template.output, priority=template.priority
        )
        request = msgspec.structs.replace(request, definition=definition)
    elif request.definition is None:
        raise BadRequest("a schedule names a templateId or carries a definition", field="templateId")
    recurrence(request)
    if request.recipients and scope.role is Role.STUDENT:
        raise BadRequest("a student's scheduled reports go to nobody else", field="recipients")
    runnable(job_request(request), scope)
    return request


def owner_scope(row: dict[str, Any]) -> Scope:
    """The scope a schedule's jobs run with: its owner's when it was last saved."""
    return Scope(Role(row["owner_role"]), row["organization_id"], row["owner_id"], tuple(row["owner_departments"]))


def _row(schedule: ReportSchedule, scope: Scope, deleted: bool = False) -> dict[str, Any]:
    assert schedule.definition is not None
    return {
        "organization_id": schedule.organization_id, "schedule_id": schedule.id, "deleted": int(deleted),
        "name": schedule.name, "enabled": int(schedule.enabled), "report_type": schedule.definition.report_type,
        "template_id": schedule.template_id, "owner_id": schedule.owner_id, "owner_role": str(scope.role),
        "owner_departments": list(scope.departments), "visibility": schedule.visibility,
        "department_id": schedule.department_id, "active_since": instant(schedule.active_since),
        "created_at": instant(schedule.created_at), "updated_at": instant(schedule.updated_at),
        "body": msgspec.json.encode(schedule).decode(),
    }  # fmt: skip


def schedule_of(row: dict[str, Any]) -> ReportSchedule:
    return msgspec.json.decode(row["body"], type=ReportSchedule)


class ScheduleStore:
    def __init__(self, store: ClickHouseStore) -> None:
        self.documents = Documents(store, TABLE, "schedule_id", COLUMNS)

    async def create(self, scope: Scope, request: ReportScheduleRequest) -> ReportSchedule:
        now = now_iso()
        schedule = ReportSchedule(
            id=str(uuid.uuid4()), organization_id=scope.require_organization(), owner_id=scope.sub,
            active_since=now, created_at=now, updated_at=now, **msgspec.structs.asdict(request),
        )  # fmt: skip
        await self.documents.put(_row(schedule, scope))
        return schedule

    async def _rows(self, scope: Scope, schedule_id: str) -> dict[str, Any]:
        return await self.documents.visible(scope, schedule_id, "report schedule")

    async def visible(self, scope: Scope, schedule_id: str) -> ReportSchedule:
        """The schedule if the caller may see it; else NotFound (existence does not leak)."""
        return schedule_of(await self._rows(scope, schedule_id))

    async def managed(self, scope: Scope, schedule_id: str) -> tuple[ReportSchedule, Scope]:
        """A schedule the caller may change, and the scope its jobs run with now."""
        row = await self._rows(scope, schedule_id)
        require_manager(scope, row["owner_id"], "schedule")
        return schedule_of(row), owner_scope(row)

    async def save(self, schedule: ReportSchedule, owner: Scope, *, restart: bool = False) -> ReportSchedule:
        """A changed schedule; `restart`: occurrences count from now (a resume, a new timing)."""
        now = now_iso()
        schedule = msgspec.structs.replace(schedule, updated_at=now, active_since=now if restart else schedule.active_since)
        await self.documents.put(_row(schedule, owner))
        return schedule

    async def delete(self, schedule: ReportSchedule, owner: Scope) -> None:
        await self.documents.put(_row(msgspec.structs.replace(schedule, updated_at=now_iso()), owner, deleted=True))

    async def page(
        self, scope: Scope, filters: dict[str, str], enabled: bool | None, limit: int, cursor: str | None
    ) -> tuple[list[ReportSchedule], str | None]:
        params: dict[str, Any] = {**scope.params}
        tail = f"AND {readable(scope, owner='owner_id')}"
        for column, value in filters.items():
            params[f"f_{column}"] = value
            tail += f" AND {column} = {{f_{column}:String}}"
        if enabled is not None:
            tail += f" AND enabled = {int(enabled)}"
        page = await self.documents.page(scope.organizations(), params, tail, limit, cursor)
        return [schedule_of(row) for row in page.rows], page.next_cursor

    async def enabled(self, organization_id: str | None = None) -> list[dict[str, Any]]:
        """Every enabled schedule (of every organization, or of one), as rows: the scheduler's scan."""
        if organization_id is None:
            return await self.documents.latest("1", {}, "AND enabled = 1")
        return await self.documents.latest("organization_id = {org:String}", {"org": organization_id}, "AND enabled = 1")
