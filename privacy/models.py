"""Answers of the erasure and export routes: the one definition of their
shape (handlers convert through them; the OpenAPI document derives from
them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta

from analytics.models import Count, Model, Percent, Timestamp
from privacy.jobs import COMPLETED, FAILED, QUEUED, RUNNING

JobStatus = Literal[QUEUED, RUNNING, COMPLETED, FAILED]  # type: ignore[valid-type]


class _Job(Model):
    id: str
    organization_id: str
    status: JobStatus
    step: Annotated[str, Meta(description="the last step done ('' before the first)")]
    steps_done: Count
    steps_total: Count
    percentage: Percent
    requested_by: str
    created_at: Timestamp
    started_at: Timestamp | None
    completed_at: Timestamp | None
    counts: Annotated[dict[str, Any], Meta(description="what the job did: rows per table, and the like")]
    error: str | None


class ErasureJob(_Job):
    """An erasure: it names nobody (the person's id is not kept once it completes)."""


class DataExportJob(_Job):
    """An export of everything stored about one person, as a zip archive."""

    user_id: str
    expires_at: Timestamp | None
    file_size: Annotated[Count | None, Meta(description="bytes of the archive, once completed")]
    download_url: Annotated[str | None, Meta(description="where the archive is downloaded, once completed")]


ANSWERS: tuple[type[Model], ...] = (ErasureJob, DataExportJob)
