"""Report templates and schedules on the wire (report seed API-ISS-027,
028): what a client sends and what it gets back. msgspec Structs as in
reports/models.py; `lms_events.openapi` derives the document from them.

A template is a saved job definition (report type, parameters, output,
priority) with a name, tags and a visibility. A schedule is a definition
(copied from a template when the schedule is saved, or given inline) and
a timing: a cron expression or a lookup frequency, in an IANA timezone.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from analytics.models import Day, Model, Timestamp
from reports.models import Identifier, Lookup, Name, OutputRequest, Parameters, Text

Tag = Annotated[str, Meta(min_length=1, max_length=50)]
Tags = Annotated[list[Tag], Meta(max_length=20)]
Recipient = Annotated[str, Meta(min_length=1, max_length=254, description="a user id or an e-mail address, as the mailer reads it")]
Recipients = Annotated[list[Recipient], Meta(max_length=100)]
WallTime = Annotated[str, Meta(pattern=r"^\d{2}:\d{2}$", description="local wall-clock time HH:MM")]


class Definition(Model):
    """What a job of a template or schedule is: the job request's report fields."""

    report_type: Lookup
    parameters: Parameters = msgspec.field(default_factory=Parameters)
    output: OutputRequest = msgspec.field(default_factory=OutputRequest)
    priority: Lookup = "normal"


class ReportTemplateRequest(Model, omit_defaults=True):
    """`POST /api/v1/report-templates` (and the fields a PATCH may change)."""

    name: Name
    report_type: Lookup
    description: Text | None = None
    parameters: Parameters = msgspec.field(default_factory=Parameters)
    output: OutputRequest = msgspec.field(default_factory=OutputRequest)
    priority: Lookup = "normal"
    tags: Tags = msgspec.field(default_factory=list)
    visibility: Lookup = "private"
    department_id: Identifier | None = None


class ReportTemplate(ReportTemplateRequest, omit_defaults=False, kw_only=True):
    id: str
    owner_id: str
    created_at: Timestamp
    updated_at: Timestamp
    organization_id: str | None = None  # absent: a system template, offered in every organization
    system: bool = False


class ReportTemplatePage(Model):
    items: list[ReportTemplate]
    next_cursor: str | None


class ReportScheduleRequest(Model, omit_defaults=True):
    """`POST /api/v1/report-schedules`: a templateId or a definition; a cronExpression or a frequency."""

    name: Name
    description: Text | None = None
    template_id: Identifier | None = None
    definition: Definition | None = None
    cron_expression: Annotated[str, Meta(min_length=1, max_length=120)] | None = None
    frequency: Lookup | None = None
    time_of_day: WallTime = "00:00"
    day_of_week: Annotated[int, Meta(ge=0, le=6, description="0 Sunday .. 6 Saturday (weekly)")] | None = None
    day_of_month: Annotated[int, Meta(ge=1, le=28, description="monthly and quarterly")] | None = None
    timezone: Annotated[str, Meta(min_length=1, max_length=64, description="IANA, e.g. Europe/Berlin")] = "UTC"
    start_date: Day | None = None
    end_date: Day | None = None
    recipients: Recipients = msgspec.field(default_factory=list)
    output: OutputRequest | None = None
    visibility: Lookup = "private"
    department_id: Identifier | None = None
    enabled: bool = True


class ReportSchedule(ReportScheduleRequest, omit_defaults=False, kw_only=True):
    id: str
    organization_id: str
    owner_id: str
    active_since: Timestamp
    created_at: Timestamp
    updated_at: Timestamp
    last_run_at: Timestamp | None = None
    last_job_id: str | None = None
    next_run_at: Timestamp | None = None
    next_run_local: str | None = None


class ReportSchedulePage(Model):
    items: list[ReportSchedule]
    next_cursor: str | None


class ScheduleRun(Model, omit_defaults=True):
    """One job a schedule created, with the job's status now (absent once the job is deleted)."""

    job_id: str
    trigger: Annotated[str, Meta(description="scheduled | catch-up | manual")]
    due_at: Timestamp
    created_at: Timestamp
    missed: int = 0
    status: Lookup | None = None


class ScheduleRunPage(Model):
    items: list[ScheduleRun]
    next_cursor: str | None


class Occurrence(Model):
    at: Timestamp
    local: Annotated[str, Meta(description="the same instant in the schedule's timezone, ISO 8601 with its offset")]


class UpcomingRuns(Model):
    """`GET .../upcoming`: the next runs, whether or not the schedule is enabled now."""

    schedule_id: str
    timezone: str
    enabled: bool
    items: list[Occurrence]


ANSWERS = (ReportTemplate, ReportTemplatePage, ReportTemplateRequest, ReportSchedule, ReportSchedulePage,
           ReportScheduleRequest, ScheduleRunPage, UpcomingRuns)  # fmt: skip
