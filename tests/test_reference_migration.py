"""sql/0020: reference data stored before it was keyed by organization is carried over."""

from __future__ import annotations

import orjson

from lms_events.clickhouse import ClickHouseStore
from lms_events.migrations import discover
from tests.support import reference_entity, unique_org


async def test_entities_of_the_old_table_are_copied_keyed_by_their_organization(store: ClickHouseStore) -> None:
    org = unique_org()
    attributes = {"organization_id": org, "department_id": "dep_old", "role": "teacher"}
    # As the previous version wrote it: two versions of one entity, the later one wins.
    for version, role in ((1, "student"), (2, "teacher")):
        await store.execute(
            "INSERT INTO reference_entities (kind, entity_id, organization_id, attributes, _version) "
            "VALUES ('user', {id:String}, {org:String}, {a:String}, {v:UInt64})",
            {"id": f"usr_{org}", "org": org, "a": orjson.dumps({**attributes, "role": role}).decode(), "v": version},
        )
    [migration] = [m for m in discover() if m.name == "reference_by_organization"]
    for _ in range(2):  # a crash before the migration was recorded runs it again
        for statement in migration.statements():
            await store.execute(statement)

    copied = await reference_entity(store, org, "user", f"usr_{org}")
    assert [orjson.loads(row["attributes"]) for row in copied] == [attributes]
