"""Request bodies of the template and schedule APIs: a JSON object read
within a size limit, converted to its model with a 400 naming the field,
and the deep merge that lays a request over a template's defaults."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from aiohttp import web

from lms_events.errors import BadRequest

MAX_BODY_BYTES = 64 * 1024
_AT = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
T = TypeVar("T")


async def json_object(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if len(raw) > MAX_BODY_BYTES:
        raise BadRequest(f"a request body is at most {MAX_BODY_BYTES} bytes")
    if not raw and optional:
        return {}
    try:
        body = msgspec.json.decode(raw or b"null")
    except msgspec.DecodeError:
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def converted(body: Any, model: type[T]) -> T:
    """`body` as `model`; a field of the wrong type, size or name is a 400 naming it (camelCase path)."""
    try:
        return msgspec.convert(body, model)
    except msgspec.ValidationError as exc:
        match = _AT.search(str(exc))
        raise BadRequest(_AT.sub("", str(exc)), field=(match.group("path") if match else None) or None) from None


def deep_merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """`changes` over `base`: objects merge key by key, anything else (lists too) is replaced."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merged(merged[key], value)
        else:
            merged[key] = value
    return merged
