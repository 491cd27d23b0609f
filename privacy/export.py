"""Export of everything stored about one person (GDPR art. 15 and 20), as
a job: one zip archive.

    <table>.jsonl   every row of every table naming the person, one JSON
                    object a line: the same tables and conditions as the
                    erasure (lms_events/personal_data.py: user columns found
                    from system.columns, and NAMED_ELSEWHERE), tables that
                    collapse read with FINAL (each row once, as queries see
                    it), aggregate states as their values
    events.csv      their events of every events table, one CSV with a header
    README.md       what each file is, with its row count

Rows are written by ClickHouse itself (JSONEachRow, CSVWithNames) and
added to the archive table by table; the archive is written beside its
final place and renamed, so a download never sees half of it. Archives
are kept under <data dir>/exports/<organization>/ for
LMS_EVENTS_REPORTS_RETENTION_DAYS, and removed with the person's other
data by an erasure.
"""

from __future__ import annotations

import asyncio
import re
import zipfile
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from lms_events.personal_data import Source, sources
from privacy.context import EXPORTS_DIR, PrivacyContext
from privacy.jobs import COMPLETED, JobStore, PrivacyJob, Progress, now

STEPS = ("tables", "events", "archive")
EVENT_TABLES = ("events", "perf_events", "bi_events")
EVENT_COLUMNS = (
    "event_id", "event_type", "event_category", "timestamp", "received_at", "user_id", "session_id",
    "privacy_level", "retention_days", "platform", "course_id", "class_id", "department_id", "score",
    "duration_ms", "device_info", "context", "properties",
)  # fmt: skip
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _select_list(source: Source) -> str:
    """Every column, aggregate states finalized into the values they stand for."""
    return ", ".join(
        f"finalizeAggregation({name}) AS {name}" if kind.startswith("AggregateFunction(") else name for name, kind in source.columns
    )


def relative_path(organization_id: str, job_id: str) -> str:
    return f"{EXPORTS_DIR}/{_UNSAFE.sub('_', organization_id)}/{job_id}.zip"


async def _table_rows(ctx: PrivacyContext, source: Source, identities: dict[str, str]) -> tuple[bytes, int]:
    final = " FINAL" if source.collapsing else ""
    body, _ = await ctx.store.query_bytes(
        f"SELECT {_select_list(source)} FROM {source.table}{final} WHERE {source.condition}", "JSONEachRow", identities
    )
    return body, body.count(b"\n")  # one object a line: JSON escapes the newlines inside values


async def _events_csv(ctx: PrivacyContext, identities: dict[str, str]) -> tuple[bytes, int]:
    existing = {row["name"] for row in await ctx.store.query("SELECT name FROM system.tables WHERE database = currentDatabase()")}
    columns = ", ".join(EVENT_COLUMNS)
    union = " UNION ALL ".join(
        f"SELECT '{table}' AS stored_in, {columns} FROM {table} FINAL "
        "WHERE organization_id = {org:String} AND user_id IN ({id:String}, {alias:String})"
        for table in EVENT_TABLES
        if table in existing
    )
    body, rows = await ctx.store.query_bytes(f"SELECT * FROM ({union}) ORDER BY timestamp, event_id", "CSVWithNames", identities)
    return body, rows if rows is not None else max(body.count(b"\n") - 1, 0)


def _readme(job: PrivacyJob, comments: dict[str, str], counts: dict[str, int]) -> str:
    lines = [
        f"# Your data in lms-events ({job.organization_id})",
        "",
        f"Everything lms-events stored about user `{job.user_id}` of organization `{job.organization_id}`",
        f"on {now().strftime('%Y-%m-%d %H:%M:%S')} UTC, including events stored under your pseudonym",
        "(events marked `pii` are stored with a pseudonym in place of your id).",
        "",
        "Each `<table>.jsonl` file holds the rows of one table, one JSON object per line. Times are UTC.",
        "`events.csv` holds your events of every events table, one row each, with the table in `stored_in`.",
        "",
        "| file | rows | what it is |",
        "|---|---|---|",
        f"| events.csv | {counts.get('events.csv', 0)} | your events (learning, interaction, performance, business) |",
    ]
    for table in sorted(name for name in counts if name != "events.csv"):
        lines.append(f"| {table}.jsonl | {counts[table]} | {comments.get(table) or table} |")
    return "\n".join(lines) + "\n"


def _write_archive(path: Path, files: list[tuple[str, bytes]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".zip.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in files:
            archive.writestr(name, content)
    partial.replace(path)
    return path.stat().st_size


async def export(ctx: PrivacyContext, job: PrivacyJob, progress: Progress) -> PrivacyJob:
    identities = ctx.identities(job.organization_id, job.user_id)
    files: list[tuple[str, bytes]] = []
    counts: dict[str, Any] = {}
    for source in await sources(ctx.store):
        body, rows = await _table_rows(ctx, source, identities)
        files.append((f"{source.table}.jsonl", body))
        counts[source.table] = rows
    await progress("tables")
    body, rows = await _events_csv(ctx, identities)
    files.append(("events.csv", body))
    counts["events.csv"] = rows
    await progress("events")
    comments = {
        row["name"]: row["comment"]
        for row in await ctx.store.query("SELECT name, comment FROM system.tables WHERE database = currentDatabase()")
    }
    files.append(("README.md", _readme(job, comments, counts).encode()))
    relative = relative_path(job.organization_id, job.job_id)
    size = await asyncio.to_thread(_write_archive, ctx.settings.data_dir / relative, files)
    finished = replace(
        job, status=COMPLETED, completed_at=now(), counts=counts, file_path=relative, file_size=size,
        expires_at=now() + timedelta(days=ctx.settings.reports_retention_days), step="archive", steps_done=job.steps_total,
    )  # fmt: skip
    return await JobStore(ctx.store).save(finished)
