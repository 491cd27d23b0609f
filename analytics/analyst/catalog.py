"""What an analyst may name: tables (documented, each with organization_id) and functions.

Tables are an allow-list kept here and documented by the COMMENTs of
sql/0024_analyst_sql.sql. Functions are allowed by the category ClickHouse
itself files them under in `system.functions` (so the list follows the
engine's version), plus a few named ones; a function with no category, or
in a category that reads files, dictionaries, settings, the host or a
remote service (Other, Dictionary, Introspection, AI, Machine Learning, ...),
is refused. New functions of an allowed category are allowed; anything
else fails closed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from cachetools import LRUCache

from lms_events.clickhouse import ClickHouseStore

ANALYST_TABLES = (
    "events",
    "perf_events",
    "bi_events",
    "domain_facts",
    "enrollments",
    "course_completions",
    "module_completions",
    "assessment_attempts",
    "learners",
    "courses",
    "classes",
    "activity_daily",
    "learner_activity_daily",
    "learner_skills",
    "content_usage_daily",
    "analyst_queries",
)
# Every analyst table has this column; the engine confines reads by it.
ORGANIZATION_COLUMN = "organization_id"

ALLOWED_CATEGORIES = frozenset(
    {
        "Aggregate Functions", "Arithmetic", "Arrays", "Bit", "Bitmap", "Comparison", "Conditional",
        "Dates and Times", "Distance", "Encoding", "Financial", "Geo", "Geo Polygon", "Hash", "IP Address",
        "JSON", "Logical", "Map", "Mathematical", "Null", "NumericIndexedVector", "Random Number", "Rounding",
        "String", "String Replacement", "String Search", "String Splitting", "Time Series", "Time Window",
        "Tuple", "Type Conversion", "URL", "UUID",
    }
)  # fmt: skip
# Pure functions of their arguments filed under "Other" or "Internal" that analysts need, and
# version(), which ClickHouse clients ask for on connecting.
ALLOWED_NAMES = frozenset(
    {
        "lambda", "_CAST", "bar", "countDigits", "finalizeAggregation", "formatReadableDecimalSize",
        "formatReadableQuantity", "formatReadableSize", "formatReadableTimeDelta", "identity", "ignore",
        "initializeAggregation", "isConstant", "isDecimalOverflow", "materialize", "neighbor",
        "parseReadableSize", "parseReadableSizeOrNull", "parseReadableSizeOrZero", "parseTimeDelta",
        "runningAccumulate", "runningDifference", "runningDifferenceStartingWithFirstValue", "toColumnTypeName",
        "toTypeName", "transform", "visibleWidth", "caseWithExpression", "version",
    }
)  # fmt: skip
# Aggregate function combinators (countIf, argMaxMerge, uniqExactState, ...), longest first.
COMBINATORS = (
    "SimpleState", "MergeState", "OrDefault", "Distinct", "Resample", "ForEach", "OrNull", "ArgMin", "ArgMax",
    "State", "Merge", "Array", "Map", "If",
)  # fmt: skip

PLANS_CACHED = 2048
# How long the names of the database's tables are trusted (they change only with migrations).
_TABLES_TTL_S = 30.0


@dataclass
class Catalog:
    """The functions of this engine an analyst may call, and the names of the database's tables."""

    functions: frozenset[str]
    case_insensitive: frozenset[str]
    aggregates: frozenset[str]
    # Checked and printed queries by (text, organization, limits, formats, table names): guard.py.
    plans: LRUCache[tuple[Any, ...], Any] = field(default_factory=lambda: LRUCache(maxsize=PLANS_CACHED))
    _tables: frozenset[str] = frozenset()
    _tables_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def load(cls, store: ClickHouseStore) -> Catalog:
        rows = await store.query("SELECT name, alias_to, categories, case_insensitive, is_aggregate FROM system.functions")
        category = {row["name"]: row["categories"] for row in rows}
        allowed: set[str] = set()
        insensitive: set[str] = set()
        aggregates: set[str] = set()
        for row in rows:
            own = row["categories"] or category.get(row["alias_to"], "")
            if row["name"] in ALLOWED_NAMES or own in ALLOWED_CATEGORIES:
                allowed.add(row["name"])
                if row["case_insensitive"]:
                    insensitive.add(row["name"].lower())
                if row["is_aggregate"]:
                    aggregates.add(row["name"])
        return cls(frozenset(allowed | {"lambda"}), frozenset(insensitive), frozenset(aggregates))

    def allows_function(self, name: str) -> bool:
        return name in self.functions or name.lower() in self.case_insensitive or self._allowed_aggregate(name)

    def _allowed_aggregate(self, name: str) -> bool:
        """An allowed aggregate with combinators (countIf, argMaxMerge): strip one suffix at a time."""
        for suffix in COMBINATORS:
            if name.endswith(suffix) and len(name) > len(suffix):
                base = name[: -len(suffix)]
                if base in self.aggregates or self._allowed_aggregate(base):
                    return True
        return False

    async def database_tables(self, store: ClickHouseStore) -> frozenset[str]:
        """Every table, view and dictionary name of the database: a name that is none of these
        can only be a CTE or an alias, so it reads nothing the guard did not check."""
        async with self._lock:
            if time.monotonic() - self._tables_at > _TABLES_TTL_S:
                rows = await store.query(
                    "SELECT name FROM system.tables WHERE database = currentDatabase() "
                    "UNION ALL SELECT name FROM system.dictionaries WHERE database = currentDatabase()"
                )
                self._tables = frozenset(row["name"] for row in rows)
                self._tables_at = time.monotonic()
            return self._tables


async def dictionary(store: ClickHouseStore) -> list[dict[str, Any]]:
    """The analyst tables with their descriptions and columns, from the COMMENTs of the migrations."""
    tables = await store.query(
        "SELECT name, comment FROM system.tables WHERE database = currentDatabase() AND name IN {names:Array(String)}",
        {"names": _array(ANALYST_TABLES)},
    )
    columns = await store.query(
        "SELECT table, name, type, comment FROM system.columns "
        "WHERE database = currentDatabase() AND table IN {names:Array(String)} ORDER BY table, position",
        {"names": _array(ANALYST_TABLES)},
    )
    by_table: dict[str, list[dict[str, str]]] = {}
    for column in columns:
        by_table.setdefault(column["table"], []).append(
            {"name": column["name"], "type": column["type"], "description": column["comment"]}
        )
    comments = {table["name"]: table["comment"] for table in tables}
    return [
        {"name": name, "description": comments[name], "columns": by_table.get(name, [])}
        for name in ANALYST_TABLES
        if name in comments
    ]


def _array(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{name}'" for name in names) + "]"
