"""HTTP handlers of the report metadata API (reports/metadata.py): token ->
scope -> the answer, static ones from the data files, filter options
through the answer cache keyed by the caller's scope."""

from __future__ import annotations

import msgspec
from aiohttp import web

from analytics.handlers import scope_of
from analytics.params import identifier, limit
from reports import metadata
from reports.handlers import json_answer
from reports.keys import LEDGER
from reports.metadata_models import (
    EventTypeList,
    FilterOptionPage,
    LookupCategory,
    OutputFormatList,
    ReportTypeMetadataList,
)
from reports.plan_keys import METADATA_CACHE, METADATA_TTL_S

STATIC_MAX_AGE_S = 300
ROUTE = "report-metadata/filter-options"


def _static(answer: msgspec.Struct) -> web.Response:
    response = json_answer(answer)
    response.headers["Cache-Control"] = f"private, max-age={STATIC_MAX_AGE_S}"
    return response


async def report_types(request: web.Request) -> web.Response:
    scope_of(request)
    return _static(msgspec.convert({"items": metadata.report_types()}, ReportTypeMetadataList))


async def output_formats(request: web.Request) -> web.Response:
    scope_of(request)
    return _static(msgspec.convert({"items": metadata.output_formats()}, OutputFormatList))


async def lookup_category(request: web.Request) -> web.Response:
    scope_of(request)
    category = request.match_info["category"]
    return _static(msgspec.convert({"category": category, "items": metadata.lookup_category(category)}, LookupCategory))


async def event_types(request: web.Request) -> web.Response:
    scope_of(request)
    return _static(msgspec.convert({"items": metadata.event_types()}, EventTypeList))


async def filter_options(request: web.Request) -> web.Response:
    scope = scope_of(request)
    scope.require_organization()
    kind = request.match_info["kind"]
    query = request.query
    search = identifier(query.get("search"), "search")
    size = limit(query)
    cursor = query.get("cursor") or None
    key = [kind, search, size, cursor]
    store = request.app[LEDGER].store
    answer = await request.app[METADATA_CACHE].get_or_compute(
        scope, ROUTE, key, request.app[METADATA_TTL_S],
        lambda: metadata.filter_options(store, scope, kind, search, size, cursor),
    )  # fmt: skip
    return json_answer(msgspec.convert(answer, FilterOptionPage))
