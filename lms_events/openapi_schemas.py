"""The components of the OpenAPI document (lms_events/openapi.py): request
schemas hoisted from `schemas/`, answer models (msgspec) as JSON Schemas,
and the two security schemes."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

import schemas
from analytics import models
from ingest import answers
from lms_events.errors import ErrorAnswer
from privacy import models as privacy_models
from reports import metadata_models, plan_models
from reports import models as report_models

OPENAPI_VERSION = "3.1.0"
SCHEMA_REF = "#/components/schemas/{name}"
JSON = "application/json"

# schemas/ file -> component name; each `$defs` entry X becomes "<name>.X".
REQUEST_SCHEMAS = {
    "event.schema.json": "Event",
    "event_properties.schema.json": "EventProperties",
    "domain_events.schema.json": "DomainEvent",
    "consent.schema.json": "Consent",
}
# Keywords of a schema file that only label it: a file with nothing else
# (event_properties: only `$defs`) adds its definitions, not itself.
LABELS = {"title", "description"}

WRITE_KEY = "writeKey"
READ_TOKEN = "readToken"
SECURITY_SCHEMES = {
    WRITE_KEY: {
        "type": "http",
        "scheme": "bearer",
        "description": "A write key of one organization and environment (`lms-events keys create`). Writes only.",
    },
    READ_TOKEN: {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "HS256 JWT with sub, org, role, departments, exp (`lms-events token`). Reads only.",
    },
}


def ref(name: str) -> dict[str, str]:
    return {"$ref": SCHEMA_REF.format(name=name)}


LOCAL_DEF = "#/$defs/"


def rewrite_refs(node: Any, prefix: str) -> Any:
    """A copy of a schema with `#/$defs/X` pointing at the hoisted component `<prefix>.X`."""
    if isinstance(node, dict):
        copy = {key: rewrite_refs(value, prefix) for key, value in node.items()}
        target = copy.get("$ref")
        if isinstance(target, str) and target.startswith(LOCAL_DEF):
            copy["$ref"] = SCHEMA_REF.format(name=f"{prefix}.{target[len(LOCAL_DEF):]}")
        return copy
    if isinstance(node, list):
        return [rewrite_refs(item, prefix) for item in node]
    return node


def hoisted(file: str, name: str) -> dict[str, Any]:
    """A schemas/ file as components. `$schema` and `$id` go: inside the
    document an `$id` would rebase every reference onto lms-events.dev."""
    document = schemas.load(file)
    body = {key: value for key, value in document.items() if key not in ("$schema", "$id", "$defs")}
    components = {f"{name}.{key}": rewrite_refs(value, name) for key, value in document.get("$defs", {}).items()}
    if set(body) - LABELS:
        components[name] = rewrite_refs(body, name)
    return components


@cache
def component_schemas() -> dict[str, Any]:
    structs = (*models.ANSWERS, *report_models.ANSWERS, *plan_models.ANSWERS, *metadata_models.ANSWERS, *privacy_models.ANSWERS,
               *answers.ANSWERS, models.QueryRequest, ErrorAnswer)  # fmt: skip
    _, generated = msgspec.json.schema_components(structs, ref_template=SCHEMA_REF)
    for file, name in REQUEST_SCHEMAS.items():
        request_schemas = hoisted(file, name)
        clash = set(request_schemas) & set(generated)
        if clash:
            raise ValueError(f"component names used twice: {sorted(clash)}")
        generated.update(request_schemas)
    return dict(sorted(generated.items()))


# Responses ------------------------------------------------------------------
