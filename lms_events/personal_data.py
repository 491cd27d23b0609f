"""Where a person's rows are: every table with a column naming users,
found from `system.columns` so that a table added later cannot be
forgotten by the data-usage answer, the export or the erasure.

A column names users when it is called `user_id` (events, facts, read
models, consent) or `subject_user_id` (the audit trail). Views and
Null-engine tables hold no rows of their own and are left out.
"""

from __future__ import annotations

from dataclasses import dataclass

from lms_events.clickhouse import ClickHouseStore

USER_COLUMNS = ("user_id", "subject_user_id")
ROWLESS_ENGINES = ("MaterializedView", "View", "Null")


def _listed(names: tuple[str, ...]) -> str:
    # Constants of this module, never input: quoted as SQL literals.
    return "(" + ", ".join(f"'{name}'" for name in names) + ")"


@dataclass(frozen=True)
class PersonalTable:
    table: str
    column: str
    # whether replays collapse (at merge): counted with FINAL to count each row once
    collapsing: bool


async def personal_tables(store: ClickHouseStore) -> list[PersonalTable]:
    rows = await store.query(
        f"""SELECT c.table AS table, c.name AS column, t.engine AS engine FROM system.columns AS c
           INNER JOIN system.tables AS t ON t.database = c.database AND t.name = c.table
           WHERE c.database = currentDatabase() AND c.name IN {_listed(USER_COLUMNS)}
             AND t.engine NOT IN {_listed(ROWLESS_ENGINES)} AND NOT t.is_temporary
           ORDER BY c.table, c.name"""
    )
    return [PersonalTable(row["table"], row["column"], "Replacing" in row["engine"] or "Aggregating" in row["engine"]) for row in rows]


async def rows_about(store: ClickHouseStore, organization_id: str, user_id: str) -> dict[str, int]:
    """How many rows each personal table holds about one user of one organization."""
    counts: dict[str, int] = {}
    for found in await personal_tables(store):
        rows = await store.query(
            f"SELECT count() AS n FROM {found.table}{' FINAL' if found.collapsing else ''} WHERE organization_id = {{org:String}} AND {found.column} = {{user:String}}",
            {"org": organization_id, "user": user_id},
        )
        counts[found.table] = counts.get(found.table, 0) + int(rows[0]["n"])
    return counts


# Where a person is named other than in a user column: these tables are read
# (export) and cleared (erasure) by these conditions too, when they exist.
# `{id}` is the platform's user id, `{alias}` its `pii` pseudonym.
_IDS = "({id:String}, {alias:String})"
_ENTITY = (
    f"(kind = 'user' AND entity_id IN {_IDS}) OR (kind = 'enrollment' AND "
    "(startsWith(entity_id, concat({id:String}, '/')) OR startsWith(entity_id, concat({alias:String}, '/'))))"
)
NAMED_ELSEWHERE = {
    # what they did, besides what was done about them
    "audit_log": f"actor IN {_IDS}",
    # the raw event as posted (a truncated raw that is no longer JSON is not found)
    "rejected_events": f"JSONExtractString(raw, 'user_id') IN {_IDS}",
    # the user entity and their enrollments (`<user>/course/<id>`, `<user>/class/<id>`)
    "reference_entities_by_organization": _ENTITY,
    "reference_entities": _ENTITY,
    "report_jobs": f"requested_by IN {_IDS}",
    "report_downloads": f"downloaded_by IN {_IDS}",
    "analyst_queries": f"sub IN {_IDS}",
    # report definitions they own, and deliveries addressed to them
    "report_templates": f"owner_id IN {_IDS}",
    "report_schedules": f"owner_id IN {_IDS}",
    "report_schedule_runs": "hasAny(recipients, [{id:String}, {alias:String}])",
    "report_notifications": "hasAny(recipients, [{id:String}, {alias:String}])",
}


@dataclass(frozen=True)
class Source:
    """A table and the condition on its rows naming one person (bound: org, id, alias)."""

    table: str
    condition: str
    collapsing: bool
    # the column-type of each column, for readers that must render aggregate states
    columns: tuple[tuple[str, str], ...]


async def sources(store: ClickHouseStore) -> list[Source]:
    """Every table holding rows about a person, with the condition that finds them:
    the user columns found from system.columns, and NAMED_ELSEWHERE."""
    conditions: dict[str, list[str]] = {}
    collapsing: dict[str, bool] = {}
    for found in await personal_tables(store):
        conditions.setdefault(found.table, []).append(f"{found.column} IN {_IDS}")
        collapsing[found.table] = found.collapsing
    rows = await store.query(
        f"""SELECT name, engine FROM system.tables WHERE database = currentDatabase()
            AND name IN {_listed(tuple(NAMED_ELSEWHERE))}"""
    )
    for row in rows:
        conditions.setdefault(row["name"], []).append(NAMED_ELSEWHERE[row["name"]])
        collapsing.setdefault(row["name"], "Replacing" in row["engine"] or "Aggregating" in row["engine"])
    columns: dict[str, list[tuple[str, str]]] = {}
    for row in await store.query(
        f"""SELECT table, name, type FROM system.columns WHERE database = currentDatabase()
            AND table IN {_listed(tuple(conditions))} ORDER BY table, position"""
    ):
        columns.setdefault(row["table"], []).append((row["name"], row["type"]))
    return [
        Source(
            table,
            "organization_id = {org:String} AND (" + " OR ".join(f"({c})" for c in parts) + ")",
            collapsing[table],
            tuple(columns.get(table, ())),
        )
        for table, parts in sorted(conditions.items())
    ]
