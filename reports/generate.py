"""One job's file: stage the report's rows, then write them chunk by chunk
into the job's format and store the file.

The report is computed with the scope its requester had when the job was
created (their role and departments are stored with the job).
`on_progress` is called after every chunk; when it answers False (the job
was cancelled) the partial file is removed and JobCancelled raised.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import msgspec

from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.tokens import Principal, Role
from reports.definitions import DEFINITIONS, request_for, shape
from reports.ledger import StoredJob, now_iso
from reports.models import Progress, Storage
from reports.rows import stage
from reports.storage import ReportFiles
from reports.writers import FORMATS, Document, open_writer

CHART_BARS = 15


class JobCancelled(Exception):
    """The job stopped being `running` while its file was written."""


def scope_of(stored: StoredJob) -> Scope:
    job = stored.job
    principal = Principal(job.requested_by, Role(stored.requester_role), job.organization_id, stored.requester_departments)
    return Scope.of(principal)


def _parameters(stored: StoredJob) -> dict[str, str]:
    shown = msgspec.to_builtins(stored.job.parameters)
    flat = {"Organization": stored.job.organization_id, "Requested by": stored.job.requested_by}
    for name, value in shown.items():
        name = re.sub(r"(?<!^)([A-Z])", r" \1", name).capitalize()  # dateRange -> Date range
        if isinstance(value, dict):
            flat[name] = ", ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in value.items())
        else:
            flat[name] = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return flat


def _label(expression: str) -> str:
    """A chart's label column, or the columns a grouped one concatenates."""
    return " / ".join(re.findall(r"toString\((\w+)\)", expression)) or expression


async def generate(
    store: ClickHouseStore,
    storage: ReportFiles,
    stored: StoredJob,
    *,
    dropped_after_days: int,
    on_progress: Callable[[Progress], Awaitable[bool]],
) -> tuple[Storage, Progress]:
    job = stored.job
    shaped = shape(DEFINITIONS[job.report_type], job.parameters)
    await on_progress(Progress(current_step="querying", percentage=0, records_processed=0))
    staged = await stage(store, job.id, shaped, request_for(scope_of(stored), job.parameters, dropped_after_days))
    output = FORMATS[job.output.format]
    scratch = storage.scratch(job.organization_id, job.id, output.extension)
    try:
        document = Document(
            title=job.name,
            report_type=job.report_type,
            generated_at=now_iso(),
            parameters=_parameters(stored),
            columns=shaped.columns,
            summary=await staged.summary(shaped),
            chart=await staged.chart(shaped, CHART_BARS),
            chart_label=(
                f"{shaped.chart[1]} by {_label(shaped.chart[0])}, the last {CHART_BARS}"
                if shaped.chronological
                else f"Top {CHART_BARS} by {shaped.chart[1]}"
            ),
            total_rows=staged.total,
        )
        writer = await asyncio.to_thread(open_writer, job.output.format, scratch, document)
        done = 0
        async for chunk in staged.chunks():
            await asyncio.to_thread(writer.write, chunk)
            done += chunk.num_rows
            progress = Progress(
                current_step="writing", percentage=round(100 * done / staged.total, 2), records_processed=done,
                total_records=staged.total,
            )  # fmt: skip
            if not await on_progress(progress):
                await asyncio.to_thread(writer.close)
                raise JobCancelled(job.id)
        await asyncio.to_thread(writer.close)
        stored_at = await asyncio.to_thread(storage.commit, scratch, job.organization_id, job.id, output.extension)
    except BaseException:
        storage.discard(scratch)
        raise
    finally:
        await staged.drop()
    final = Progress(current_step="done", percentage=100, records_processed=staged.total, total_records=staged.total)
    return stored_at, final

