"""CSV answers (`Accept: text/csv` or `?format=csv`), streamed.

An object answer is one header row and one row; nested values are JSON
in their cell. The dashboard is its metrics, one per row. A list answer
streams every page, following `nextCursor`, so a large export never sits
in memory whole.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

CSV_TYPE = "text/csv"


def wants_csv(request: web.Request) -> bool:
    requested = request.query.get("format")
    if requested is not None:
        return requested == "csv"
    return CSV_TYPE in request.headers.get("Accept", "")


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return "" if value is None else value


def _lines(rows: list[Mapping[str, Any]], header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    if header and rows:
        writer.writerow(rows[0].keys())
    writer.writerows([_cell(value) for value in row.values()] for row in rows)
    return buffer.getvalue()


async def _start(request: web.Request, filename: str) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": f"{CSV_TYPE}; charset=utf-8", "Content-Disposition": f'attachment; filename="{filename}"'}
    )
    await response.prepare(request)
    return response


async def object_csv(request: web.Request, filename: str, rows: list[Mapping[str, Any]]) -> web.StreamResponse:
    response = await _start(request, filename)
    await response.write(_lines(rows, header=True).encode())
    await response.write_eof()
    return response


async def pages_csv(
    request: web.Request, filename: str, page: Callable[[list[Any] | None], Awaitable[dict[str, Any]]], decode: Callable[[str], list[Any]]
) -> web.StreamResponse:
    """Every page of a list answer, from the request's cursor on."""
    cursor = request.query.get("cursor")
    after = decode(cursor) if cursor else None  # a bad cursor is a 400, before the 200 has started
    first_page = await page(after)  # so is anything the first query refuses
    response = await _start(request, filename)
    first = True
    async for items in _walk(page, first_page, decode):
        await response.write(_lines(items, header=first).encode())
        first = False
    await response.write_eof()
    return response


async def _walk(
    page: Callable[[list[Any] | None], Awaitable[dict[str, Any]]], answer: dict[str, Any], decode: Callable[[str], list[Any]]
) -> AsyncIterator[list[dict[str, Any]]]:
    while True:
        yield answer["items"]
        if answer["nextCursor"] is None:
            return
        answer = await page(decode(answer["nextCursor"]))
