"""Validate one event against the envelope schema in `schemas/`.

The hot path asks a compiled validator (jsonschema-rs, ~3 µs an event)
only "is it valid?". For the rare invalid event the pure-Python
`jsonschema` explains why, with the field path and the rule broken, which
is what the client sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jsonschema
import jsonschema_rs

import schemas


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: `field` is a dotted path into the event, `rule` the schema keyword."""

    field: str
    rule: str
    message: str

    def as_json(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


def _dotted(path: Any) -> str:
    return ".".join(str(part) for part in path) or "(event)"


class SchemaCheck:
    """A JSON Schema compiled for speed, explained for people."""

    def __init__(self, schema: dict[str, Any], *, field_prefix: str = "") -> None:
        self._fast = jsonschema_rs.validator_for(schema, validate_formats=True)
        explainer_cls = jsonschema.validators.validator_for(schema)
        self._explainer = explainer_cls(schema, format_checker=explainer_cls.FORMAT_CHECKER)
        self._prefix = field_prefix

    def violations(self, instance: Any) -> list[Violation]:
        if self._fast.is_valid(instance):
            return []
        found = [
            Violation(
                field=self._prefix + _dotted(error.absolute_path) if error.absolute_path else (self._prefix.rstrip(".") or "(event)"),
                rule=str(error.validator),
                message=error.message,
            )
            for error in sorted(self._explainer.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path)))
        ]
        # The two validators disagree only on exotic formats; never accept what the fast one refused.
        return found or [Violation(self._prefix.rstrip(".") or "(event)", "schema", "does not match the schema")]


class EnvelopeValidator:
    """Checks the envelope every event shares."""

    def __init__(self) -> None:
        self._envelope = SchemaCheck(schemas.event_envelope())

    def violations(self, event: Any) -> list[Violation]:
        if not isinstance(event, dict):
            return [Violation("(event)", "type", f"an event must be a JSON object, got {type(event).__name__}")]
        return self._envelope.violations(event)
