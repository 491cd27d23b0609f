"""Apply the numbered ClickHouse migrations in `sql/` in order, once each.

A migration is `sql/NNNN_name.sql`: statements separated by `;` at the
end of a line. Applied versions are recorded in `schema_migrations`, so
running `migrate` again (every `up` and `worker` start does) is a no-op.
Migrations are written to be idempotent (IF NOT EXISTS) so that a crash
between a statement and the record is harmless on the next run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import structlog

import sql as sql_package
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import MigrationError, StorageError

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(sql_package.__file__).parent
_FILENAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_STATEMENT_END = re.compile(r";\s*$", re.MULTILINE)

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        text = "\n".join(
            line for line in self.path.read_text().splitlines() if not line.lstrip().startswith("--")
        )
        return [stmt.strip() for stmt in _STATEMENT_END.split(text) if stmt.strip()]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILENAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_snake_name.sql")
        migrations.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version number in {directory}")
    return migrations


async def applied_versions(store: ClickHouseStore) -> set[int]:
    await store.execute(_CREATE_LEDGER)
    rows = await store.query("SELECT version FROM schema_migrations FINAL")
    return {int(row["version"]) for row in rows}


async def migrate(store: ClickHouseStore, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply pending migrations; returns the versions applied now."""
    done = await applied_versions(store)
    applied = []
    for migration in discover(directory):
        if migration.version in done:
            continue
        for statement in migration.statements():
            try:
                await store.execute(statement)
            except StorageError as exc:
                raise MigrationError(f"{migration.path.name}: {exc}") from exc
        await store.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ({v:UInt32}, {n:String})",
            {"v": migration.version, "n": migration.name},
        )
        log.info("migration_applied", version=migration.version, name=migration.name)
        applied.append(migration.version)
    return applied
