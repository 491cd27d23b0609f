"""HTTP handlers of erasure and export: token -> scope -> who may ->
job -> answer. Errors are the lms-events error tree (403 a role that may
not, 404 a job outside the caller's view, 409 an archive not ready, 410
an archive past its expiry).

Who may:
    erasure of a user           subscriber-admin (own organization), system-admin (names it)
    export of a user            the same
    export of oneself           anyone with an organization (`/me/data-export`)
    an export's job and file    its requester, the person it is about, the organization's administrators
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from analytics import params
from analytics.handlers import json_answer, record_audit, scope_of
from analytics.keys import PREFIX
from analytics.params import iso_z
from analytics.scope import Scope
from lms_events.errors import Conflict, Forbidden, Gone, NotFound
from privacy import models
from privacy.jobs import COMPLETED, ERASURE, EXPORT, PrivacyJob
from privacy.keys import CONTEXT, RUNNER

READ_CHUNK = 1 << 20


def _administrator(scope: Scope) -> str:
    if not scope.organization_wide:
        raise Forbidden("erasure and exports of other users are for subscriber-admins and system-admins")
    return scope.require_organization()


def _user(request: web.Request) -> str:
    user_id = params.identifier(request.match_info["userId"], "userId")
    assert user_id is not None  # a path segment is never empty
    return user_id


def _audit(request: web.Request, scope: Scope, action: str, job: PrivacyJob, subject: str = "") -> None:
    record_audit(
        request, scope, action, organization_id=job.organization_id, subject_user_id=subject, target=f"{job.kind}:{job.job_id}"
    )


def _answer(job: PrivacyJob, status: int = 200) -> web.Response:
    common: dict[str, Any] = {
        "id": job.job_id,
        "organizationId": job.organization_id,
        "status": job.status,
        "step": job.step,
        "stepsDone": job.steps_done,
        "stepsTotal": job.steps_total,
        "percentage": round(100 * job.steps_done / job.steps_total, 2) if job.steps_total else 0.0,
        "requestedBy": job.requested_by,
        "createdAt": iso_z(job.created_at),
        "startedAt": iso_z(job.started_at),
        "completedAt": iso_z(job.completed_at),
        "counts": job.counts,
        "error": job.error or None,
    }
    if job.kind == ERASURE:
        response = json_answer(common, models.ErasureJob)
    else:
        done = job.status == COMPLETED
        response = json_answer(
            {
                **common,
                "userId": job.user_id,
                "expiresAt": iso_z(job.expires_at),
                "fileSize": job.file_size if done else None,
                "downloadUrl": f"{PREFIX}/data-exports/{job.job_id}/download" if done else None,
            },
            models.DataExportJob,
        )
    response.set_status(status)
    return response


async def _submit(request: web.Request, scope: Scope, kind: str, organization_id: str, user_id: str) -> PrivacyJob:
    job = PrivacyJob(
        organization_id=organization_id, kind=kind, user_id=user_id, requested_by=scope.sub, requester_role=str(scope.role)
    )
    return await request.app[RUNNER].submit(job)


async def post_erasure(request: web.Request) -> web.Response:
    scope = scope_of(request)
    organization_id = _administrator(scope)
    job = await _submit(request, scope, ERASURE, organization_id, _user(request))
    # The request names nobody on record: the erasure's own audit row carries its counts.
    _audit(request, scope, "erasure.requested", job)
    return _answer(job, 202)


async def get_erasure(request: web.Request) -> web.Response:
    scope = scope_of(request)
    _administrator(scope)
    job_id = params.identifier(request.match_info["erasureId"], "erasureId") or ""
    job = await request.app[RUNNER].jobs.get(scope.organization_id, job_id, ERASURE)
    if job is None:
        raise NotFound("no erasure with this id in your organization", field="erasureId")
    return _answer(job)


async def post_my_export(request: web.Request) -> web.Response:
    scope = scope_of(request)
    job = await _submit(request, scope, EXPORT, scope.require_organization(), scope.sub)
    _audit(request, scope, "export.requested", job, scope.sub)
    return _answer(job, 202)


async def post_user_export(request: web.Request) -> web.Response:
    scope = scope_of(request)
    organization_id = _administrator(scope)
    user_id = _user(request)
    job = await _submit(request, scope, EXPORT, organization_id, user_id)
    _audit(request, scope, "export.requested", job, user_id)
    return _answer(job, 202)


async def _visible_export(request: web.Request) -> tuple[Scope, PrivacyJob]:
    scope = scope_of(request)
    job_id = params.identifier(request.match_info["exportId"], "exportId") or ""
    job = await request.app[RUNNER].jobs.get(scope.organization_id, job_id, EXPORT)
    if job is None or not (scope.organization_wide or scope.sub in (job.requested_by, job.user_id)):
        raise NotFound("no data export with this id in your view", field="exportId")
    return scope, job


async def get_export(request: web.Request) -> web.Response:
    return _answer((await _visible_export(request))[1])


async def download_export(request: web.Request) -> web.StreamResponse:
    scope, job = await _visible_export(request)
    if job.status != COMPLETED:
        raise Conflict(f"the export is {job.status}; download it once completed", field="status")
    path = request.app[CONTEXT].settings.data_dir / job.file_path
    if (job.expires_at is not None and job.expires_at <= datetime.now(UTC)) or not path.exists():
        raise Gone("the archive has expired (past expiresAt) or was removed; ask for a new export")
    _audit(request, scope, "export.download", job, job.user_id)
    response = web.StreamResponse(
        headers={
            "Content-Type": "application/zip",
            "Content-Disposition": f'attachment; filename="data-export-{job.job_id}.zip"',
            "Content-Length": str(job.file_size),
        }
    )
    await response.prepare(request)
    with path.open("rb") as file:
        while block := await asyncio.to_thread(file.read, READ_CHUNK):
            await response.write(block)
    await response.write_eof()
    return response

