"""The report metadata API (report seed API-ISS-033): what a report form
needs to offer its choices.

    report-types          every report type: generated here or not, its columns, parameters, measures, dimensions
    output-formats        every format with its content type and file extension
    lookups/{category}    one lookup category's values and descriptions
    event-types           the taxonomy's event types, with category and group
    filter-options/{kind} departments, courses, classes or learners the caller may
                          see (Scope.users() inside the query), searched by id, keyset pages

GET /api/v1/report-lookups (every category) and GET /api/v1/reports (the
generated types) stay as they are; these extend them. Static answers come
from the data files, loaded once; filter options go through the
analytics answer cache (analytics/cache.py), keyed by the caller's scope.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import schemas
from analytics.params import decode_cursor, encode_cursor
from analytics.scope import Scope
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import NotFound
from reports import lookups
from reports.definitions import DEFINITIONS
from reports.writers import FORMATS

# Parameters every report type takes, and those only some do: name -> (type, description).
COMMON_PARAMETERS = {
    "dateRange": ("object", "startDate and endDate, whole UTC days, both included"),
    "filters.departmentIds": ("array", "only learners whose latest department is one of these"),
    "filters.courseIds": ("array", "only these courses"),
    "filters.classIds": ("array", "only these classes"),
    "filters.learnerIds": ("array", "only these learners"),
    "includeInactive": ("boolean", "also rows without activity"),
}
SPECIFIC_PARAMETERS = {
    "at-risk-learners": {
        "inactiveDays": ("integer", "days without activity in the course (default 14)"),
        "recentScoreDays": ("integer", "falling scores: the latest days with scores compared (default 3)"),
        "scoreDrop": ("number", "falling scores: points the recent mean is below the earlier one (default 10)"),
    },
    "compliance": {"dueDate": ("date", "required: completed by the end of this UTC day")},
    "content-usage": {"filters.eventTypes": ("array", "only these event types")},
}
REQUIRED = {"compliance": ("dueDate", "filters.courseIds")}
FILTER_KINDS = ("departments", "courses", "classes", "learners")


@cache
def report_types() -> list[dict[str, Any]]:
    described = lookups.descriptions("report-type")
    types = []
    for report_type, description in described.items():
        definition = DEFINITIONS.get(report_type)
        parameters = {**COMMON_PARAMETERS, **SPECIFIC_PARAMETERS.get(report_type, {})}
        types.append({
            "id": report_type, "description": description, "generated": definition is not None,
            "columns": list(definition.columns) if definition else [],
            "parameters": [
                {"name": name, "type": kind, "description": text, "required": name in REQUIRED.get(report_type, ())}
                for name, (kind, text) in parameters.items()
            ],
            # what parameters.measures and parameters.groupBy may name for this type
            "measures": list(definition.measures) if definition else [],
            "dimensions": list(definition.dimensions) if definition else [],
        })  # fmt: skip
    return types


@cache
def output_formats() -> list[dict[str, Any]]:
    described = lookups.descriptions("output-format")
    return [
        {"id": name, "description": described.get(name, ""), "contentType": fmt.content_type, "extension": fmt.extension}
        for name, fmt in FORMATS.items()
    ]


def lookup_category(category: str) -> list[dict[str, Any]]:
    if category not in lookups.categories():
        raise NotFound(f"no lookup category {category!r}; categories: {', '.join(lookups.categories())}", field="category")
    if category == lookups.EVENT_TYPE:
        return [{"value": value, "description": ""} for value in lookups.values(category)]
    return [{"value": value, "description": text} for value, text in lookups.descriptions(category).items()]


@cache
def event_types() -> list[dict[str, Any]]:
    listed = schemas.load("taxonomy.json")["event_types"]
    return [{"id": name, "category": entry["category"], "group": entry["group"]} for name, entry in listed.items()]


def _options_sql(kind: str, scope: Scope) -> str:
    """The ids of `kind` the caller may see: org-wide roles every one; others those of their users."""
    users = scope.users()
    if kind == "learners":
        return f"SELECT DISTINCT user_id AS id FROM learners WHERE {users}"
    if kind == "departments":
        return f"""SELECT DISTINCT department AS id FROM (
                       SELECT argMaxMerge(department_id) AS department FROM learners WHERE {users} GROUP BY organization_id, user_id)
                   WHERE department != ''"""
    column = {"courses": "course_id", "classes": "class_id"}[kind]
    if scope.organization_wide:
        return f"SELECT DISTINCT {column} AS id FROM {kind} WHERE {scope.organizations()}"
    return f"SELECT DISTINCT {column} AS id FROM enrollments WHERE {users} AND {column} != ''"


async def filter_options(
    store: ClickHouseStore, scope: Scope, kind: str, search: str | None, limit: int, cursor: str | None
) -> dict[str, Any]:
    if kind not in FILTER_KINDS:
        raise NotFound(f"no filter options {kind!r}; kinds: {', '.join(FILTER_KINDS)}", field="kind")
    params: dict[str, Any] = {**scope.params, "page_limit": limit + 1}
    tail = ""
    if search:
        params["search"] = search
        tail += " AND positionCaseInsensitiveUTF8(id, {search:String}) > 0"
    after = decode_cursor({"cursor": cursor} if cursor else {}, 1)
    if after is not None:
        params["after"] = str(after[0])
        tail += " AND id > {after:String}"
    rows = await store.query(
        f"SELECT id FROM ({_options_sql(kind, scope)}) WHERE 1 {tail} ORDER BY id LIMIT {{page_limit:UInt32}}", params
    )
    ids = [row["id"] for row in rows]
    next_cursor = encode_cursor([ids[limit - 1]]) if len(ids) > limit else None
    return {"kind": kind, "items": [{"id": value} for value in ids[:limit]], "nextCursor": next_cursor}
