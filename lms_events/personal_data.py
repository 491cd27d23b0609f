"""Where a person's rows are: every table with a column naming users,
found from `system.columns` so that a table added later cannot be
forgotten by the data-usage answer (and later, export and erasure).

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
