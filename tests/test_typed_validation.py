"""Typed decoding (msgspec structs compiled from schemas/) agrees with the JSON Schema.

It may refuse what the schema accepts (the JSON Schema path then decides),
never the reverse; and an event is decided, and stored, identically
whether its batch was decoded typed or as plain JSON values.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs
import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import schemas
from ingest import events, timestamps
from ingest.consent import ConsentRecord
from ingest.intake import Caller, stored_event
from ingest.privacy import PrivacyFilter
from ingest.schema_types import DATE_TIME_PATTERN, SchemaTypes, Unsupported, python_pattern
from ingest.taxonomy import event_types
from ingest.validation import EventValidator, ValidEvent, property_schema
from lms_events.write_keys import WriteKey
from tests.support import new_event

# As in test_intake_fuzz.py: in a full run the session's Faust consumer thread
# touches the global `random` while Hypothesis draws; the strategies do not.
pytestmark = pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")

DEFS = schemas.load("event_properties.schema.json")["$defs"]
TYPES = sorted(event_types())
RECEIVED_AT = datetime(2026, 1, 27, 15, 0, tzinfo=UTC)
DATE_TIME = jsonschema_rs.validator_for({"type": "string", "format": "date-time"}, validate_formats=True)
VALIDATOR = EventValidator(max_future=timedelta(minutes=10), late_after=timedelta(hours=1))
PRIVACY = PrivacyFilter(b"typed-validation-test")
CALLER = Caller(WriteKey("key", "", "org_54321", "development", "test", ""), "192.0.2.0", "request")

# Values near the edges of what the schemas allow.
TRICKY_STRINGS = [
    "G-01542", "G-01542-quiz", "G-0154", "G-01542\n", "G-01542-Quiz", "G-٠١٥٤٢", "", "x" * 65, "x" * 129,
    "quiz", "touch", "sso", "mastered", "2026-12-03T14:30:00Z", "2026-02-29T10:00:00Z", "2026-02-30T10:00:00Z",
    "2026-12-03 14:30:00Z", "2026-12-03T14:30:00+0100", "2016-12-31T23:59:60Z", "2026-12-03t14:30:00.5z",
]
NUMBERS = [5.0, 1e2, 0.5, 1.5, 2**63, -1, 0, 2555, 2556]


def json_values(numbers: list[Any]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-3, 130), st.sampled_from(numbers), st.sampled_from(TRICKY_STRINGS),
        st.text(max_size=8),
    )
    return st.one_of(
        scalars,
        st.lists(st.one_of(st.sampled_from(["tag", "x" * 65]), scalars), max_size=3),
        st.dictionaries(st.sampled_from(["a", "game_id", "score"]), scalars, max_size=2),
    )


def property_names(event_type: str) -> list[str]:
    names, _ = SchemaTypes(DEFS).object_fields({"$ref": f"#/$defs/type_{event_type}"})
    return sorted(names)


def test_every_schema_in_schemas_compiles_to_typed_checks() -> None:
    """Events of a type without typed checks would all take the slower JSON Schema path."""
    for name in TYPES:
        SchemaTypes(DEFS).struct({"$ref": f"#/$defs/type_{name}"}, name)
    envelope = schemas.event_envelope()["properties"]
    for name in events.SUB_OBJECTS[:2]:
        SchemaTypes().struct(envelope[name], name)


@pytest.mark.parametrize(
    ("schema", "reason"),
    [
        ({"type": "string", "pattern": "^a.b$"}, "`.` differs"),
        ({"type": "string", "pattern": "^\\s+$"}, "\\s differs"),
        ({"type": "string", "format": "email"}, "no exact counterpart"),
        ({"type": "object", "additionalProperties": False}, "unknown keys would be skipped"),
        ({"oneOf": [{"type": "string"}, {"type": "integer"}]}, "unsupported keyword"),
        ({"enum": [1, 2]}, "enum of non-strings"),
        ({"type": ["string", "integer"]}, "two types"),
    ],
)
def test_constructs_without_an_exact_counterpart_are_refused(schema: dict[str, Any], reason: str) -> None:
    with pytest.raises(Unsupported):
        SchemaTypes().type_of(schema, "probe")


def test_a_property_named_by_two_allof_parts_meets_both() -> None:
    schema = {"allOf": [{"$ref": "#/$defs/a"}], "properties": {"x": {"type": "integer", "minimum": 0}}}
    struct = SchemaTypes({"a": {"properties": {"x": {"type": ["integer", "null"], "maximum": 10}}}}).struct(schema, "T")
    decoder = msgspec.json.Decoder(struct)
    assert decoder.decode(b'{"x": 10}').x == 10
    for refused in (b'{"x": 11}', b'{"x": -1}', b'{"x": null}'):
        with pytest.raises(msgspec.ValidationError):
            decoder.decode(refused)


def test_patterns_mean_what_ecma_means() -> None:
    compiled = re.compile(python_pattern("^G-[0-9]{5}$"))
    assert compiled.search("G-01542")
    assert not compiled.search("G-01542\n"), "ECMA's $ does not match before a final newline"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(TYPES), st.data())
def test_typed_properties_never_accept_what_the_schema_refuses(event_type: str, data: st.DataObject) -> None:
    names = property_names(event_type)
    properties = data.draw(
        st.dictionaries(st.sampled_from([*names, "not_in_schema"]), json_values([*NUMBERS, 10**30]), max_size=4)
    )
    decoder = msgspec.json.Decoder(SchemaTypes(DEFS).struct({"$ref": f"#/$defs/type_{event_type}"}, "P"))
    try:
        decoder.decode(msgspec.json.encode(properties))
    except msgspec.ValidationError:
        return
    assert jsonschema_rs.validator_for(property_schema(event_type), validate_formats=True).is_valid(properties)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.from_regex(DATE_TIME_PATTERN, fullmatch=True), st.sampled_from(TRICKY_STRINGS)))
def test_typed_date_times_are_schema_date_times(value: str) -> None:
    if re.search(DATE_TIME_PATTERN, value):
        assert DATE_TIME.is_valid(value)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.from_regex(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z"), st.sampled_from(TRICKY_STRINGS)))
def test_canonical_timestamps_are_real_moments_spelled_canonically(value: str) -> None:
    if timestamps.is_canonical(value):
        moment = timestamps.parse(value)
        assert DATE_TIME.is_valid(value) and moment is not None and timestamps.iso_ms(moment) == value


ENVELOPE_FIELDS = [*schemas.event_envelope()["properties"]]
# Valid variants first; each example then breaks at most one field.
SPELLINGS = ["game_stage_complete", "gameStageComplete", "game-stage-complete", "GameStageComplete"]
TIMESTAMPS = ["2026-01-27T14:30:45.123Z", "2026-01-27T14:30:45Z", "2026-01-27T15:30:45.123+01:00",
              "2026-01-27T12:00:00.000Z", "2024-02-29T10:00:00.000Z", "2026-01-27t14:30:45.123z"]
EXTRA_PROPERTIES = [{}, {"email": "a@b.example", "custom": [1, {"x": None}]}, {"score": 100, "passed": False},
                    {"mistake_count": None, "concept_tags": ["a", "b"], "difficulty_level": 10}]
BROKEN = [
    ("event_id", "evt_0123"), ("event_type", "no_such_type"), ("event_type", "game stage complete"),
    ("timestamp", "2026-02-29T10:00:00.000Z"), ("timestamp", "2016-12-31T23:59:60.000Z"),
    ("timestamp", "2026-01-27T16:00:00.000Z"), ("privacy_level", "secret"), ("organization_id", "org_other"),
]
valid_events = st.builds(
    lambda event_id, event_type, timestamp, level, extra, drop: {
        k: v for k, v in new_event(
            event_id=event_id, event_type=event_type, timestamp=timestamp, privacy_level=level,
            properties={**new_event()["properties"], **extra},
        ).items() if k != drop
    },
    st.sampled_from([str(uuid.uuid4()), "evt_0123456789abcdef"]),
    st.sampled_from(SPELLINGS),
    st.sampled_from(TIMESTAMPS),
    st.sampled_from(["standard", "sensitive", "pii"]),
    st.sampled_from(EXTRA_PROPERTIES),
    st.sampled_from([None, "user_id", "session_id", "organization_id", "context", "device_info", "privacy_level"]),
)
events_strategy = st.one_of(
    valid_events,
    st.builds(lambda event, broken: {**event, broken[0]: broken[1]}, valid_events, st.sampled_from(BROKEN)),
    st.builds(lambda event, field, value: {**event, field: value}, valid_events, st.sampled_from(ENVELOPE_FIELDS),
              json_values(NUMBERS)),
    st.builds(lambda event, field, value: {**event, "properties": {**event["properties"], field: value}},
              valid_events, st.sampled_from(["score", "passed", "game_id", "email", "stage_type"]), json_values(NUMBERS)),
)


def decided(checked: ValidEvent | list[Any], consent: ConsentRecord | None) -> tuple[Any, ...]:
    if not isinstance(checked, ValidEvent):
        return ("rejected", [v.as_json() for v in checked])
    stored = stored_event(checked, privacy=PRIVACY, consent=consent, caller=CALLER, received_at="2026-01-27T15:00:00.000Z")
    return (checked.event_type.name, checked.late, checked.timestamp, events.encode(stored))


@settings(max_examples=400, deadline=None)
@given(events_strategy, st.sampled_from([None, ConsentRecord("org_54321", "usr_12345", {}, "under_13", False)]))
def test_typed_and_json_value_paths_decide_and_store_alike(event: dict[str, Any], consent: ConsentRecord | None) -> None:
    # Integers beyond 64 bits are left out: orjson reads them as floats, the typed path keeps the client's digits.
    raw = orjson.dumps(event)
    typed = events.decode_one(raw)
    window = VALIDATOR.window(RECEIVED_AT)
    as_value = decided(VALIDATOR.check(orjson.loads(raw), window), consent)
    if typed is not None:
        assert decided(VALIDATOR.check(typed, window), consent) == as_value


def test_a_realistic_batch_is_decoded_typed_and_checked_without_the_json_schema() -> None:
    batch = [new_event(), new_event(event_type="gameStageComplete"), new_event(timestamp="2026-01-27T14:30:45Z")]
    typed = events.decode_batch(orjson.dumps({"batch": batch}))
    assert typed is not None and len(typed) == 3
    window = VALIDATOR.window(RECEIVED_AT)
    assert all(isinstance(VALIDATOR.check(event, window), ValidEvent) for event in typed)


def test_one_event_msgspec_cannot_type_leaves_the_others_of_its_batch_typed() -> None:
    batch = [new_event(), new_event(retention_days=5.0), 3, new_event(event_id="evt_1")]
    decoded = events.decode_batch(orjson.dumps({"batch": batch}))
    assert decoded is not None
    assert [type(event) is events.Event for event in decoded] == [True, False, False, False]
    assert decoded[1:] == batch[1:], "the others as their plain JSON values"
    window = VALIDATOR.window(RECEIVED_AT)
    checked = [VALIDATOR.check(event, window) for event in decoded]
    assert [isinstance(c, ValidEvent) for c in checked] == [True, True, False, False]
    assert checked[1].event.retention_days == 5.0  # type: ignore[union-attr]  # valid: 5.0 is a JSON Schema integer


def test_unknown_keys_of_sub_objects_are_stored_byte_for_byte_and_unknown_top_level_fields_dropped() -> None:
    event = new_event(properties={**new_event()["properties"], "custom": {"nested": [1, 2.50]}}, campaign="spring")
    raw = orjson.dumps(event).replace(b"2.5", b"2.50")
    typed = events.decode_one(raw)
    checked = VALIDATOR.check(typed, VALIDATOR.window(RECEIVED_AT))
    assert isinstance(checked, ValidEvent)
    stored = events.encode(stored_event(checked, privacy=PRIVACY, consent=None, caller=CALLER, received_at="now"))
    assert b'"passed":true,"custom":{"nested":[1,2.50]}}' in stored
    assert b"campaign" not in stored


def test_a_remembered_device_info_does_not_vouch_for_the_same_bytes_as_context() -> None:
    """{"referrer": 5} fits device_info (an unknown key there) but not context (referrer is a string)."""
    validator = EventValidator(max_future=timedelta(minutes=10), late_after=timedelta(hours=1))
    window = validator.window(RECEIVED_AT)
    first = events.decode_one(orjson.dumps(new_event(device_info={"referrer": 5})))
    second = events.decode_one(orjson.dumps(new_event(context={"referrer": 5})))
    assert isinstance(validator.check(first, window), ValidEvent)
    assert [v.field for v in validator.check(second, window)] == ["context.referrer"]  # type: ignore[union-attr]
