"""The OpenAPI operations of erasure and export (privacy/), beside
lms_events/openapi.py, which looks them up with the others."""

from __future__ import annotations

from typing import Any

from lms_events.openapi_parts import (
    CONFLICT,
    NOT_FOUND,
    ORGANIZATION,
    READ_ERRORS,
    answer_response,
    error_response,
    path_parameter,
)
from lms_events.openapi_schemas import READ_TOKEN, ref

ERASED_USER = error_response("the user was erased: nothing about them is recorded again")
EXPIRED = error_response("the archive has expired (past expiresAt) or was removed by an erasure; ask for a new export")
USER = path_parameter("userId", "the user's id (as events and domain events name them)")
EXPORT_ID = path_parameter("exportId", "the export job's id")


def with_erased_user(operation: dict[str, Any]) -> dict[str, Any]:
    """A consent operation, which refuses an erased user with 410."""
    return {**operation, "responses": {**operation["responses"], "410": ERASED_USER}}


def _operation(summary: str, status: str, ok: dict[str, Any], parameters: tuple[dict[str, Any], ...], **errors: dict[str, Any]) -> dict[str, Any]:
    return {
        "tags": ["privacy"],
        "summary": summary,
        "security": [{READ_TOKEN: []}],
        "parameters": [*parameters, ORGANIZATION],
        "responses": {status: ok, **READ_ERRORS, **errors},
    }


def privacy_operations() -> dict[tuple[str, str], dict[str, Any]]:
    erasure, export = ref("ErasureJob"), ref("DataExportJob")
    return {
        ("POST", "/api/v1/users/{userId}/erasure"): _operation(
            "Erase a user of the organization (subscriber-admin, system-admin): every row naming them, their "
            "rollup contributions, Redis state and report files; later events of theirs are `erased`",
            "202", answer_response("the erasure job, queued", erasure), (USER,),
        ),
        ("GET", "/api/v1/erasures/{erasureId}"): _operation(
            "An erasure job: progress (steps) and counts; it names nobody",
            "200", answer_response("the job", erasure), (path_parameter("erasureId", "the erasure job's id"),),
            **{"404": NOT_FOUND},
        ),
        ("POST", "/api/v1/me/data-export"): _operation(
            "Export everything stored about you, as a zip archive (a job)", "202",
            answer_response("the export job, queued", export), (),
        ),
        ("POST", "/api/v1/users/{userId}/data-export"): _operation(
            "Export everything stored about a user of the organization (subscriber-admin, system-admin)", "202",
            answer_response("the export job, queued", export), (USER,),
        ),
        ("GET", "/api/v1/data-exports/{exportId}"): _operation(
            "An export job (its requester, the person it is about, the organization's administrators)",
            "200", answer_response("the job", export), (EXPORT_ID,), **{"404": NOT_FOUND},
        ),
        ("GET", "/api/v1/data-exports/{exportId}/download"): _operation(
            "The export's zip archive: a JSON Lines file per table, events.csv, README.md",
            "200", {"description": "the archive", "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
            (EXPORT_ID,), **{"404": NOT_FOUND, "409": CONFLICT, "410": EXPIRED},
        ),
    }  # fmt: skip
