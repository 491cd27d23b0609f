"""msgspec types compiled from the JSON Schemas in `schemas/`: decode and check in one pass.

msgspec decodes JSON straight into typed structs, checking types and
constraints in C as it goes, several times cheaper than parsing into
dicts and validating those. It is used only where it is *sound*: every
value a compiled type accepts, the JSON Schema accepts too. It may refuse
more (`5.0` for an integer, a leap second, a `date-time` with an offset
it cannot place): what it refuses, the gateway checks against the JSON
Schema itself (ingest.validation), so the schema files stay the only
rules and a refusal here is never a rejection.

Supported keywords: type (one type, optionally with "null"), properties,
required, allOf, $ref, enum (of strings and null), minimum, maximum, minLength,
maxLength, pattern, items, maxItems, format "date-time"; annotations are
ignored. Anything else raises `Unsupported` when the types are built, so a
schema change that msgspec cannot express exactly fails loudly at start-up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

# RFC 3339 `date-time` with month lengths checked; 29 February (leap years)
# is left to the JSON Schema check. ASCII digits only, like ECMA-262's \d.
DATE_TIME_PATTERN = (
    r"(?a)^\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    r"[Tt](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)\Z"
)
_ANNOTATIONS = {"description", "title", "$schema", "$id", "$comment", "examples", "default"}
_SCALARS = {"string": str, "integer": int, "number": float, "boolean": bool}


def _kinds(kind: str | list[str]) -> set[str]:
    return {kind} if isinstance(kind, str) else set(kind)


class Unsupported(ValueError):
    """A schema construct msgspec cannot check exactly."""


def python_pattern(pattern: str) -> str:
    """An ECMA-262 pattern, as JSON Schema means it, for Python's `re.search`.

    Only syntax both dialects read alike is translated: ECMA's `$` is the end of
    input (Python's also matches before a final newline), ECMA's \\d and \\w are
    ASCII. A `.` outside a class (ECMA's excludes \\r and U+2028, Python's does
    not), \\s, \\b, back-references, lookarounds and escapes of code points are refused."""
    outside_class = re.sub(r"\\.|\[(?:\\.|[^\]])*\]", "", pattern)
    if "." in outside_class or re.search(r"\\[^dDwW.\-\[\]{}()*+?^$|/\\]|\(\?", pattern):
        raise Unsupported(f"pattern {pattern!r} uses syntax that differs between ECMA-262 and Python")
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    if "$" in pattern.replace("\\$", ""):
        raise Unsupported(f"pattern {pattern!r}: `$` only at the end")
    return "(?a)" + pattern


class SchemaTypes:
    """Types for the schemas of one document, resolving its `#/$defs/...` references."""

    def __init__(self, defs: Mapping[str, Any] | None = None) -> None:
        self._defs = defs or {}

    def _resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while set(schema) - _ANNOTATIONS == {"$ref"}:
            reference = schema["$ref"]
            if not reference.startswith("#/$defs/"):
                raise Unsupported(f"$ref {reference!r}")
            schema = self._defs[reference.removeprefix("#/$defs/")]
        return schema

    def object_fields(self, schema: Mapping[str, Any]) -> tuple[dict[str, Any], set[str]]:
        """The properties and required names of an object schema, allOf parts merged."""
        schema = self._resolve(schema)
        properties: dict[str, Any] = {}
        required: set[str] = set()
        def add(more: Mapping[str, Any]) -> None:
            for name, field_schema in more.items():
                properties[name] = self._intersect(properties[name], field_schema) if name in properties else field_schema

        for keyword, value in schema.items():
            if keyword in ("allOf", "$ref"):
                for part in value if keyword == "allOf" else [{"$ref": value}]:
                    part_properties, part_required = self.object_fields(part)
                    add(part_properties)
                    required |= part_required
            elif keyword == "properties":
                add(value)
            elif keyword == "required":
                required |= set(value)
            elif keyword == "type" and value == "object":
                pass
            elif keyword not in _ANNOTATIONS:
                raise Unsupported(f"keyword {keyword!r} in an object schema")
        return properties, required

    def _intersect(self, first: Mapping[str, Any], second: Mapping[str, Any]) -> Mapping[str, Any]:
        """One schema for a value both must accept (allOf parts naming the same property)."""
        merged = dict(self._resolve(first))
        for keyword, value in self._resolve(second).items():
            if keyword in _ANNOTATIONS or merged.get(keyword) == value:
                continue
            if keyword not in merged:
                merged[keyword] = value
            elif keyword == "type":
                kinds = sorted(_kinds(merged["type"]) & _kinds(value))
                if not kinds:
                    raise Unsupported(f"types {merged['type']!r} and {value!r} exclude each other")
                merged["type"] = kinds[0] if len(kinds) == 1 else kinds
            elif keyword in ("maximum", "maxLength", "maxItems"):
                merged[keyword] = min(merged[keyword], value)
            elif keyword in ("minimum", "minLength"):
                merged[keyword] = max(merged[keyword], value)
            else:
                raise Unsupported(f"two different {keyword!r} for one property")
        return merged

    def struct(self, schema: Mapping[str, Any], name: str, *, overrides: Mapping[str, Any] | None = None) -> type:
        """A Struct for an object schema; unknown fields are allowed (and skipped), as the schema allows them.
        `overrides` gives some fields another type (one the caller checks itself)."""
        properties, required = self.object_fields(schema)
        overrides = overrides or {}
        fields = []
        for field, field_schema in properties.items():
            field_type = overrides[field] if field in overrides else self.type_of(field_schema, f"{name}_{field}")
            if field in required:
                fields.append((field, field_type))
            else:
                fields.append((field, field_type | UnsetType, UNSET))
        for field in required - properties.keys():
            raise Unsupported(f"required {field!r} is not among the properties")
        # Required fields first: msgspec, like dataclasses, wants them before defaulted ones.
        fields.sort(key=len)
        return msgspec.defstruct(name, fields, gc=False)

    def type_of(self, schema: Mapping[str, Any], name: str) -> Any:
        schema = self._resolve(schema)
        kind = schema.get("type")
        if "allOf" in schema or "properties" in schema or kind == "object":
            return self.struct(schema, name)
        if "enum" in schema:
            values = [v for v in schema["enum"] if v is not None]
            if set(schema) - _ANNOTATIONS != {"enum"} or not all(isinstance(v, str) for v in values):
                raise Unsupported(f"enum {schema['enum']!r} (only an enum of strings and null, alone)")
            literal = Literal[tuple(values)]
            return literal | None if None in schema["enum"] else literal
        nullable = isinstance(kind, list) and "null" in kind
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            if len(kinds) != 1:
                raise Unsupported(f"type {kind!r}")
            kind = kinds[0]
        base, constraints = self._constrained(schema, kind)
        annotated = Annotated[base, Meta(**constraints)] if constraints else base
        return annotated | None if nullable else annotated

    def _constrained(self, schema: Mapping[str, Any], kind: Any) -> tuple[Any, dict[str, Any]]:
        rules = {k: v for k, v in schema.items() if k not in _ANNOTATIONS and k != "type"}
        if kind == "array":
            base = list[self.type_of(rules.pop("items"), "item")] if "items" in rules else list
            constraints = {"max_length": rules.pop("maxItems")} if "maxItems" in rules else {}
        elif kind == "string":
            base, constraints = str, {}
            if "format" in rules:
                if rules.pop("format") != "date-time" or "pattern" in rules:
                    raise Unsupported(f"format {schema['format']!r}")
                constraints["pattern"] = DATE_TIME_PATTERN
            for keyword, constraint in (("minLength", "min_length"), ("maxLength", "max_length")):
                if keyword in rules:
                    constraints[constraint] = rules.pop(keyword)
            if "pattern" in rules:
                constraints["pattern"] = python_pattern(rules.pop("pattern"))
        elif kind in ("integer", "number"):
            base, constraints = _SCALARS[kind], {}
            for keyword, constraint in (("minimum", "ge"), ("maximum", "le")):
                if keyword in rules:
                    constraints[constraint] = rules.pop(keyword)
        elif kind == "boolean":
            base, constraints = bool, {}
        else:
            raise Unsupported(f"type {kind!r}")
        if rules:
            raise Unsupported(f"keywords {sorted(rules)} on a {kind}")
        return base, constraints
