"""Report templates (report seed API-ISS-027): saved job definitions,
durable in `report_templates`, and the system templates shipped as data
(schemas/report_templates.json), offered read-only in every organization.

Visibility and who may change a template are the jobs' rules
(reports/visibility.py) with the owner in place of the requester. A
template is checked as the job it would create (reports/jobs.py), so a
template that saves is one that runs. System templates are visible to
every staff role, and to students for the report types a student may run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import msgspec
import pyarrow as pa

import schemas
from analytics.params import decode_cursor, encode_cursor
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import Forbidden
from lms_events.tokens import Role
from reports import jobs
from reports.bodies import converted
from reports.ledger import instant, now_iso
from reports.models import ReportJobRequest
from reports.plan_models import ReportTemplate, ReportTemplateRequest
from reports.plan_store import TIME, Documents
from reports.visibility import readable, require_manager

TABLE = "report_templates"
TEMPLATES_FILE = "report_templates.json"
SYSTEM_OWNER = "system"
# When the shipped templates first existed (the report seed's date): their createdAt.
SYSTEM_SINCE = "2026-01-15T00:00:00.000Z"
COLUMNS: dict[str, pa.DataType] = {
    "organization_id": pa.string(), "template_id": pa.string(), "version": pa.uint64(), "deleted": pa.uint8(),
    "name": pa.string(), "report_type": pa.string(), "tags": pa.list_(pa.string()), "owner_id": pa.string(),
    "visibility": pa.string(), "department_id": pa.string(), "created_at": TIME, "updated_at": TIME,
    "body": pa.string(),
}  # fmt: skip
_REQUEST_FIELDS = tuple(field.name for field in msgspec.structs.fields(ReportTemplateRequest))


@cache
def system_templates() -> dict[str, ReportTemplate]:
    listed = schemas.load(TEMPLATES_FILE)["templates"]
    return {
        entry["id"]: converted(
            {**entry, "ownerId": SYSTEM_OWNER, "createdAt": SYSTEM_SINCE, "updatedAt": SYSTEM_SINCE, "system": True},
            ReportTemplate,
        )
        for entry in listed
    }


def request_of(template: ReportTemplate) -> ReportTemplateRequest:
    return ReportTemplateRequest(**{name: getattr(template, name) for name in _REQUEST_FIELDS})


def job_fields(template: ReportTemplate | ReportTemplateRequest) -> dict[str, Any]:
    """The job request a template stands for, on the wire (camelCase), before a caller's overrides."""
    wire = msgspec.to_builtins(template)
    keep = ("reportType", "name", "description", "parameters", "output", "priority", "visibility", "departmentId")
    fields = {key: wire[key] for key in keep if key in wire}
    if isinstance(template, ReportTemplate):
        fields["templateId"] = template.id
    return fields


def checked(request: ReportTemplateRequest, scope: Scope) -> ReportTemplateRequest:
    """The template's lookups, dates and role rules, checked as the job it creates."""
    jobs.checked_request(converted(job_fields(request), ReportJobRequest), scope)
    return request


def system_visible(scope: Scope, template: ReportTemplate) -> bool:
    return scope.role is not Role.STUDENT or template.report_type == jobs.STUDENT_REPORT


@dataclass(frozen=True)
class TemplateFilters:
    report_type: str | None = None
    owner_id: str | None = None
    visibility: str | None = None
    tag: str | None = None
    search: str | None = None
    system: bool | None = None  # None: both kinds

    def matches(self, template: ReportTemplate) -> bool:
        """The same filters on a system template, in Python."""
        return (
            (self.report_type is None or template.report_type == self.report_type)
            and (self.owner_id is None or template.owner_id == self.owner_id)
            and (self.visibility is None or template.visibility == self.visibility)
            and (self.tag is None or self.tag in template.tags)
            and (self.search is None or self.search.casefold() in template.name.casefold())
        )

    def sql(self, params: dict[str, Any]) -> str:
        tail = ""
        for column, value in (("report_type", self.report_type), ("owner_id", self.owner_id), ("visibility", self.visibility)):
            if value is not None:
                params[f"f_{column}"] = value
                tail += f" AND {column} = {{f_{column}:String}}"
        if self.tag is not None:
            params["f_tag"] = self.tag
            tail += " AND has(tags, {f_tag:String})"
        if self.search is not None:
            params["f_search"] = self.search
            tail += " AND positionCaseInsensitiveUTF8(name, {f_search:String}) > 0"
        return tail


def _row(template: ReportTemplate, deleted: bool = False) -> dict[str, Any]:
    return {
        "organization_id": template.organization_id, "template_id": template.id, "deleted": int(deleted),
        "name": template.name, "report_type": template.report_type, "tags": template.tags,
        "owner_id": template.owner_id, "visibility": template.visibility, "department_id": template.department_id,
        "created_at": instant(template.created_at), "updated_at": instant(template.updated_at),
        "body": msgspec.json.encode(template).decode(),
    }  # fmt: skip


def _position(template: ReportTemplate) -> tuple[bytes, bytes]:
    return template.name.encode(), template.id.encode()


def _template(row: dict[str, Any]) -> ReportTemplate:
    return msgspec.json.decode(row["body"], type=ReportTemplate)


class TemplateStore:
    def __init__(self, store: ClickHouseStore) -> None:
        self.documents = Documents(store, TABLE, "template_id", COLUMNS)

    async def create(self, scope: Scope, request: ReportTemplateRequest, *, name: str | None = None) -> ReportTemplate:
        organization_id = scope.require_organization()
        now = now_iso()
        fields = msgspec.structs.asdict(request)
        if name is not None:
            fields["name"] = name
        template = ReportTemplate(
            id=str(uuid.uuid4()), organization_id=organization_id, owner_id=scope.sub, created_at=now, updated_at=now, **fields
        )
        await self.documents.put(_row(template))
        return template

    async def visible(self, scope: Scope, template_id: str) -> ReportTemplate:
        """The template if the caller may see it; else NotFound (existence does not leak)."""
        system = system_templates().get(template_id)
        if system is not None and system_visible(scope, system):
            return system
        return _template(await self.documents.visible(scope, template_id, "report template"))

    async def managed(self, scope: Scope, template_id: str) -> ReportTemplate:
        """A template the caller may change: their own, or any of the organization's for an administrator."""
        template = await self.visible(scope, template_id)
        if template.system:
            raise Forbidden("system templates are read-only; duplicate one to change it", field="id")
        require_manager(scope, template.owner_id, "template")
        return template

    async def page(
        self, scope: Scope, filters: TemplateFilters, limit: int, cursor: str | None
    ) -> tuple[list[ReportTemplate], str | None]:
        """Templates by (name, id) as ClickHouse orders strings (bytes), system templates merged in."""
        after = decode_cursor({"cursor": cursor} if cursor else {}, 2)
        stored: list[ReportTemplate] = []
        if filters.system is not True:
            params = {**scope.params}
            tail = f"AND {readable(scope, owner='owner_id')}{filters.sql(params)}"
            page = await self.documents.page(scope.organizations(), params, tail, limit + 1, cursor)
            stored = [_template(row) for row in page.rows]
        system: list[ReportTemplate] = []
        if filters.system is not False:
            system = [
                template for template in system_templates().values()
                if system_visible(scope, template) and filters.matches(template)
                and (after is None or _position(template) > (str(after[0]).encode(), str(after[1]).encode()))
            ]  # fmt: skip
        merged = sorted(stored + system, key=_position)
        next_cursor = encode_cursor([merged[limit - 1].name, merged[limit - 1].id]) if len(merged) > limit else None
        return merged[:limit], next_cursor

    async def save(self, template: ReportTemplate) -> ReportTemplate:
        template = msgspec.structs.replace(template, updated_at=now_iso())
        await self.documents.put(_row(template))
        return template

    async def delete(self, template: ReportTemplate) -> None:
        await self.documents.put(_row(msgspec.structs.replace(template, updated_at=now_iso()), deleted=True))
