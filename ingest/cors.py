"""CORS for browser clients: preflights answered, every response labelled.

Write keys travel in the Authorization header, never in cookies, so the
gateway allows any configured origin without credentials.
"""

from __future__ import annotations

from aiohttp import web

ALLOWED_METHODS = "GET, POST, PUT, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type, Content-Encoding"
PREFLIGHT_MAX_AGE_S = 86400


def _allowed_origin(origins: str, origin: str | None) -> str | None:
    if origin is None:
        return None
    if origins.strip() == "*":
        return "*"
    allowed = {o.strip() for o in origins.split(",") if o.strip()}
    return origin if origin in allowed else None


def cors_middleware(origins: str):  # type: ignore[no-untyped-def]
    @web.middleware
    async def cors(request: web.Request, handler):  # type: ignore[no-untyped-def]
        origin = _allowed_origin(origins, request.headers.get("Origin"))
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            response: web.StreamResponse = web.Response(status=204)
            if origin:
                response.headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
                response.headers["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response.headers["Access-Control-Max-Age"] = str(PREFLIGHT_MAX_AGE_S)
        else:
            response = await handler(request)
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            if origin != "*":
                response.headers["Vary"] = "Origin"
        return response

    return cors
