"""`GET /openapi.json` and `GET /docs` (Swagger UI) on whichever application serves routes.

`add_docs` is called last by each entry point (`up`, `gateway`, `api`):
when the app starts, the document is built once from the routes it
actually has. Swagger UI's files come from the installed swagger-ui-py
package through a static route: no CDN, so /docs works offline and
leaks no request to a third party.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import orjson
from aiohttp import web

from lms_events.openapi import document

DOCUMENT = web.AppKey("openapi_document", bytes)
DOCUMENT_PATH = "/openapi.json"
DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/static"

PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lms-events API</title>
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "{DOCUMENT_PATH}", dom_id: "#swagger-ui", deepLinking: true}});</script>
</body>
</html>
"""


def swagger_ui_assets() -> Path:
    """swagger-ui-py's static directory. Located, not imported: the package's
    __init__ loads its framework adapters (jinja, yaml; ~70 ms) we do not use."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("swagger-ui-py is not installed; it serves /docs")
    return Path(spec.submodule_search_locations[0]) / "static"


def described_routes(app: web.Application) -> list[tuple[str, str]]:
    """(method, path) of the app's own endpoints. Left out: HEAD (aiohttp
    adds one per GET), static files, and sub-apps (the admin API: loopback
    only, for the CLI with the instance's token; not a public interface)."""
    return [
        (route.method, resource.canonical)
        for resource in app.router.resources()
        if isinstance(resource, (web.PlainResource, web.DynamicResource))
        for route in resource
        if route.method != "HEAD"
    ]


async def _build_document(app: web.Application) -> None:
    app[DOCUMENT] = orjson.dumps(document(described_routes(app)))


async def get_document(request: web.Request) -> web.Response:
    return web.Response(body=request.app[DOCUMENT], content_type="application/json")


async def get_docs(_: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


def add_docs(app: web.Application) -> None:
    app.router.add_get(DOCUMENT_PATH, get_document)
    app.router.add_get(DOCS_PATH, get_docs)
    app.router.add_static(ASSETS_PATH, swagger_ui_assets())
    app.on_startup.append(_build_document)
