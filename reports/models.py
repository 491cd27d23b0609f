"""Report jobs on the wire: the request that creates one and the job itself
(report seed 003, ReportJob: every field, nested as the seed nests them).

msgspec Structs, as in analytics/models.py: the handlers decode and encode
through them and `lms_events.openapi` derives the document from them.
Enum fields are plain strings here and checked against the lookup values
(reports/lookups.py) by `reports.jobs.checked_request`, so a bad value is
a 400 naming the field and listing what is allowed.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from analytics.models import Count, Day, Model, Timestamp

Identifier = Annotated[str, Meta(min_length=1, max_length=128)]
Name = Annotated[str, Meta(min_length=1, max_length=200)]
Text = Annotated[str, Meta(max_length=2000)]
Ids = Annotated[list[Identifier], Meta(max_length=1000)]
Lookup = Annotated[str, Meta(description="a lookup value (GET /api/v1/report-lookups lists them)")]


class DateRange(Model):
    """Whole UTC days, both included: [startDate 00:00, endDate + 1 day 00:00)."""

    start_date: Day
    end_date: Day


class Filters(Model, omit_defaults=True):
    department_ids: Ids | None = None
    course_ids: Ids | None = None
    class_ids: Ids | None = None
    learner_ids: Ids | None = None
    content_ids: Ids | None = None
    event_types: Annotated[list[Lookup], Meta(max_length=200)] | None = None
    statuses: Annotated[list[Lookup], Meta(max_length=10)] | None = None


class Parameters(Model, omit_defaults=True):
    date_range: DateRange | None = None
    filters: Filters | None = None
    group_by: Annotated[list[Lookup], Meta(max_length=5)] | None = None
    measures: Annotated[list[Lookup], Meta(max_length=20)] | None = None
    include_inactive: bool = False
    # at-risk-learners: days without activity (default 14); falling scores: the latest days with
    # scores (default 3) whose mean is at least scoreDrop points (default 10) below the earlier days'
    inactive_days: Annotated[int, Meta(ge=1, le=3650, description="at-risk-learners: days without activity (default 14)")] | None = None
    recent_score_days: Annotated[
        int, Meta(ge=1, le=365, description="at-risk-learners: the latest UTC days with scores compared with the days before them (default 3)")
    ] | None = None
    score_drop: Annotated[
        float, Meta(gt=0, le=100, description="at-risk-learners: falling scores when the recent days' mean is at least this many points below the earlier days' (default 10)")
    ] | None = None
    # compliance: the due date
    due_date: Day | None = None


class Storage(Model, omit_defaults=True):
    provider: Lookup
    path: str | None = None
    bucket: str | None = None
    key: str | None = None
    url: str | None = None
    expires_at: Timestamp | None = None


class Output(Model, omit_defaults=True):
    format: Lookup = "json"
    filename: str | None = None
    storage: Storage | None = None


class OutputRequest(Model, omit_defaults=True):
    format: Lookup = "json"
    filename: Annotated[str, Meta(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]*$")] | None = None


class Progress(Model, omit_defaults=True):
    current_step: str | None = None
    percentage: Annotated[float, Meta(ge=0, le=100)] | None = None
    records_processed: Count | None = None
    total_records: Count | None = None


class JobError(Model, omit_defaults=True):
    """Why the last run failed; `stack` is kept in ClickHouse, never sent."""

    code: str | None = None
    message: str | None = None
    retry_count: Count = 0
    last_retry_at: Timestamp | None = None


class ReportJobRequest(Model, omit_defaults=True):
    """`POST /api/v1/report-jobs`: what a client may set."""

    report_type: Lookup
    name: Name
    description: Text | None = None
    parameters: Parameters = msgspec.field(default_factory=Parameters)
    output: OutputRequest = msgspec.field(default_factory=OutputRequest)
    priority: Lookup = "normal"
    scheduled_for: Timestamp | None = None
    department_id: Identifier | None = None
    visibility: Lookup = "private"
    template_id: Identifier | None = None
    schedule_id: Identifier | None = None


class ReportJob(Model, omit_defaults=True):
    id: str
    organization_id: str
    report_type: Lookup
    name: str
    status: Lookup
    priority: Lookup
    visibility: Lookup
    requested_by: str
    parameters: Parameters
    output: Output
    created_at: Timestamp
    updated_at: Timestamp
    description: str | None = None
    progress: Progress | None = None
    scheduled_for: Timestamp | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    expires_at: Timestamp | None = None
    error: JobError | None = None
    department_id: str | None = None
    template_id: str | None = None
    schedule_id: str | None = None


class ReportJobPage(Model):
    items: list[ReportJob]
    next_cursor: str | None


class ReportTypeInfo(Model):
    """`GET /api/v1/reports`: one report type a caller can generate."""

    id: str
    description: str
    columns: list[str]
    # what parameters.measures and parameters.groupBy may name for this type (README, "Measures and groupBy")
    measures: list[str]
    dimensions: list[str]


class ReportTypeList(Model):
    items: list[ReportTypeInfo]


class LookupValues(Model):
    """`GET /api/v1/report-lookups`: every category and its allowed values."""

    categories: dict[str, list[str]]


ANSWERS = (ReportJob, ReportJobPage, ReportJobRequest, ReportTypeList, LookupValues)
