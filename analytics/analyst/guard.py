"""The guard: what runs is a tree ClickHouse parsed, this module checked, and ClickHouse printed.

1. Parse: `parseQueryToJSON(sql)` (ClickHouse's own parser, the text bound as a
   parameter, never run). One statement only: the parser refuses `a; b`.
2. Check the tree, failing closed: every node type and every key of it must
   be known here (so SETTINGS, FORMAT, INTO OUTFILE, table functions, and any
   construct a later ClickHouse adds are refused); tables must be analyst
   tables (catalog.ANALYST_TABLES) or names that are no table at all (CTEs,
   aliases); functions must be allowed by the catalog.
3. Wrap: `SELECT * FROM (<checked tree>) SETTINGS ...` with the settings the
   engine enforces: `additional_table_filters` confining every analyst table
   to the organization (subqueries, JOINs and CTEs included), the limits,
   and `readonly = 1` (no writes, no table functions, no setting changes).
   Measured with chDB 4.4: without readonly, a SETTINGS clause inside the
   query overrides the outer `additional_table_filters`; with it, the inner
   clause is silently ignored. Step 2 refuses any SETTINGS all the same, so
   neither the filters nor an analyst's expectations hang on that detail.
   The filters are keyed `database.table`: an unqualified key matches only
   while that database is the session's current one.
4. Print: `formatQueryFromJSON(wrapped)`: ClickHouse prints the text that runs.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from analytics.analyst.catalog import ANALYST_TABLES, ORGANIZATION_COLUMN, Catalog
from lms_events.clickhouse import ClickHouseStore
from lms_events.errors import BadRequest, StorageError

MAX_SQL_CHARS = 65_536
_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ENGINE_ERROR = re.compile(r"Code: \d+\. DB::Exception: (.*?)(?: \([A-Z_]+\))?\.?\s*$", re.DOTALL)

# Node type -> the keys it may have. A key or type not listed is refused.
_SELECT_KEYS = {
    "with", "select", "tables", "prewhere", "where", "group_by", "having", "window", "qualify", "order_by",
    "limit_by_offset", "limit_by_length", "limit_by", "limit_offset", "limit_length", "distinct",
    "group_by_with_totals", "group_by_with_rollup", "group_by_with_cube", "group_by_with_grouping_sets",
    "group_by_all", "order_by_all", "limit_with_ties",
}  # fmt: skip
NODE_KEYS: dict[str, frozenset[str]] = {
    "SelectWithUnionQuery": frozenset(
        {"union_mode", "list_of_selects", "list_of_modes", "is_outfile_append", "is_outfile_truncate", "is_into_outfile_with_stdout"}
    ),
    "SelectIntersectExceptQuery": frozenset({"final_operator", "children"}),
    "SelectQuery": frozenset(_SELECT_KEYS),
    "ExpressionList": frozenset({"children"}),
    "TablesInSelectQuery": frozenset({"children"}),
    "TablesInSelectQueryElement": frozenset({"table_expression", "table_join", "array_join"}),
    "TableExpression": frozenset({"database_and_table_name", "subquery", "final", "sample_size", "sample_offset"}),
    "TableIdentifier": frozenset({"name", "name_parts", "alias"}),
    "TableJoin": frozenset({"kind", "strictness", "locality", "on_expression", "using_expression_list"}),
    "ArrayJoin": frozenset({"kind", "expression_list"}),
    "Subquery": frozenset({"children", "alias"}),
    "WithElement": frozenset({"name", "subquery", "aliases"}),
    "Function": frozenset(
        {"name", "arguments", "parameters", "is_operator", "window_definition", "is_window_function", "kind",
         "window_name", "is_lambda_function", "alias", "nulls_action"}
    ),
    "Identifier": frozenset({"name", "name_parts", "alias"}),
    "Literal": frozenset({"value", "alias"}),
    "QueryParameter": frozenset({"name", "param_type", "alias"}),
    "Asterisk": frozenset({"transformers"}),
    "QualifiedAsterisk": frozenset({"qualifier", "transformers"}),
    "ColumnsRegexpMatcher": frozenset({"pattern", "transformers"}),
    "ColumnsListMatcher": frozenset({"column_list", "transformers"}),
    "QualifiedColumnsRegexpMatcher": frozenset({"qualifier", "pattern", "transformers"}),
    "QualifiedColumnsListMatcher": frozenset({"qualifier", "column_list", "transformers"}),
    "ColumnsTransformerList": frozenset({"children"}),
    "ColumnsApplyTransformer": frozenset({"func_name", "parameters", "lambda", "column_name_prefix"}),
    "ColumnsExceptTransformer": frozenset({"children", "is_strict", "pattern"}),
    "ColumnsReplaceTransformer": frozenset({"children", "is_strict"}),
    "ColumnsReplaceTransformerReplacement": frozenset({"name", "children"}),
    "OrderByElement": frozenset(
        {"direction", "nulls_direction", "nulls_direction_was_explicitly_specified", "expression", "collation",
         "with_fill", "fill_from", "fill_to", "fill_step", "fill_staleness"}
    ),
    "WindowDefinition": frozenset(
        {"parent_window_name", "partition_by", "order_by", "frame_is_default", "frame_type", "frame_begin_type",
         "frame_begin_offset", "frame_begin_preceding", "frame_end_type", "frame_end_offset", "frame_end_preceding"}
    ),
    "WindowListElement": frozenset({"name", "definition"}),
    "SampleRatio": frozenset({"numerator", "denominator"}),
}
# Keys whose value is a Field (a literal's value), not a node.
_FIELD_KEYS = {("Literal", "value")}
# Flags of the top query that must be off: they only mean something with INTO OUTFILE.
_OFF_FLAGS = ("is_outfile_append", "is_outfile_truncate", "is_into_outfile_with_stdout")
# Functions whose right-hand identifier names a table (`x IN other_table`).
_IN_FUNCTIONS = frozenset(
    {"in", "notIn", "globalIn", "globalNotIn", "nullIn", "notNullIn", "globalNullIn", "globalNotNullIn"}
)


class Refused(BadRequest):
    """The guard refuses the query; `field` is `sql` (or the parameter at fault)."""

    def __init__(self, reason: str, *, field: str = "sql") -> None:
        super().__init__(reason, field=field)


@dataclass(frozen=True)
class Limits:
    max_execution_s: float
    max_result_rows: int
    max_memory_bytes: int


@dataclass(frozen=True)
class Checked:
    """A query the guard accepted: the text that runs, the parameters it binds, and the
    output format its text named (the ClickHouse HTTP interface only)."""

    sql: str
    params: dict[str, Any]
    text_format: str | None = None


async def parse(store: ClickHouseStore, sql: str) -> dict[str, Any]:
    """ClickHouse's parse tree of `sql`; a syntax error, or more than one statement, is refused."""
    if len(sql) > MAX_SQL_CHARS:
        raise Refused(f"sql is longer than {MAX_SQL_CHARS} characters")
    if not sql.strip():
        raise Refused("sql is empty")
    try:
        rows = await store.query("SELECT parseQueryToJSON({sql:String}) AS tree", {"sql": sql})
    except StorageError as exc:
        raise Refused(f"not a query ClickHouse can parse: {engine_message(str(exc))}") from None
    tree: dict[str, Any] = orjson.loads(rows[0]["tree"])
    return tree


def engine_message(error: str) -> str:
    """ClickHouse's own sentence of an engine error, without the echo of the whole query."""
    match = _ENGINE_ERROR.search(error)
    message = match.group(1) if match else error
    return message.split(": In scope SELECT parseQueryToJSON")[0].strip()[:500]


def check(tree: dict[str, Any], catalog: Catalog, tables: frozenset[str], database: str) -> set[str]:
    """Refuse what an analyst may not run; the names of the query's parameters otherwise."""
    if tree.get("type") not in ("SelectWithUnionQuery", "SelectIntersectExceptQuery"):
        raise Refused(f"only a SELECT runs here, not {tree.get('type')}")
    for flag in _OFF_FLAGS:
        if tree.get(flag):
            raise Refused("INTO OUTFILE is not allowed")
    parameters: set[str] = set()
    _walk(tree, _Context(catalog, tables, database, parameters))
    return parameters


@dataclass(frozen=True)
class _Context:
    catalog: Catalog
    tables: frozenset[str]
    database: str
    parameters: set[str]


def _walk(node: dict[str, Any], context: _Context) -> None:
    kind = node.get("type")
    allowed = NODE_KEYS.get(kind) if isinstance(kind, str) else None
    if allowed is None:
        raise Refused(f"{kind} is not allowed")
    for key, value in node.items():
        if key == "type":
            continue
        if key == "children" and kind in ("TableIdentifier", "Identifier"):
            # `{name:Identifier}`: a parameter naming a table or column would escape the check of names.
            raise Refused("identifier parameters ({name:Identifier}) are not allowed; name tables and columns in the text")
        if key not in allowed:
            raise Refused(f"{_describe_key(kind, key)} is not allowed")
        if (kind, key) in _FIELD_KEYS:
            continue
        _walk_value(value, context, f"{kind}.{key}")
    if kind == "TableIdentifier":
        _check_table(node, context)
    elif kind == "Function":
        _check_function(node, context)
    elif kind == "ColumnsApplyTransformer":
        name = node.get("func_name")
        if isinstance(name, str) and not context.catalog.allows_function(name):
            raise Refused(f"function {name} is not allowed")
    elif kind == "QueryParameter":
        context.parameters.add(str(node.get("name")))


def _walk_value(value: Any, context: _Context, where: str) -> None:
    if isinstance(value, dict):
        if "type" not in value:
            raise Refused(f"unsupported SQL construct ({where})")
        _walk(value, context)
    elif isinstance(value, list):
        for item in value:
            _walk_value(item, context, where)
    elif not isinstance(value, (str, int, float, bool)) and value is not None:
        raise Refused(f"unsupported SQL construct ({where})")


def _check_table(node: dict[str, Any], context: _Context) -> None:
    parts = node.get("name_parts") or [node.get("name")]
    _check_table_name([str(part) for part in parts], context)


def _check_table_name(parts: list[str], context: _Context) -> None:
    if len(parts) == 2:
        database, name = parts
        if database != context.database:
            raise Refused(f"{database}.{name}: only the tables of GET /api/v1/query/schema are readable")
        if name not in ANALYST_TABLES:
            raise Refused(f"table {name} is not readable; the readable ones are in GET /api/v1/query/schema")
        return
    if len(parts) != 1:
        raise Refused(f"{'.'.join(parts)} is not a readable table")
    name = parts[0]
    # A name that is no table of the database can only be a CTE or an alias, whose own tree is checked.
    if name not in ANALYST_TABLES and name in context.tables:
        raise Refused(f"table {name} is not readable; the readable ones are in GET /api/v1/query/schema")


def _check_function(node: dict[str, Any], context: _Context) -> None:
    name = str(node.get("name"))
    if not context.catalog.allows_function(name):
        raise Refused(f"function {name} is not allowed")
    if name in _IN_FUNCTIONS:
        arguments = (node.get("arguments") or {}).get("children") or []
        if len(arguments) == 2 and arguments[1].get("type") == "Identifier":
            identifier = arguments[1]
            _check_table_name([str(part) for part in identifier.get("name_parts") or [identifier.get("name")]], context)


def _describe_key(kind: str, key: str) -> str:
    names = {
        "settings": "SETTINGS",
        "format_ast": "FORMAT",
        "out_file": "INTO OUTFILE",
        "table_function": "a table function",
        "compression": "COMPRESSION",
    }
    return names.get(key, f"{kind}.{key}")


def wrapped(tree: dict[str, Any], database: str, organization_id: str | None, limits: Limits) -> dict[str, Any]:
    """`SELECT * FROM (<tree>) SETTINGS <the engine's rules>` as a tree, for ClickHouse to print."""
    changes: list[dict[str, Any]] = []
    if organization_id is not None:
        condition = f"{ORGANIZATION_COLUMN} = {_string_literal(organization_id)}"
        filters = [
            _field("Tuple", [_field("String", f"{database}.{table}"), _field("String", condition)]) for table in ANALYST_TABLES
        ]
        changes.append({"name": "additional_table_filters", "value": _field("Map", filters)})
    changes += [
        {"name": "max_execution_time", "value": _field("Float64", limits.max_execution_s)},
        {"name": "max_result_rows", "value": _field("UInt64", limits.max_result_rows)},
        {"name": "result_overflow_mode", "value": _field("String", "throw")},
        {"name": "max_memory_usage", "value": _field("UInt64", limits.max_memory_bytes)},
        {"name": "output_format_json_quote_64bit_integers", "value": _field("UInt64", 0)},
        # Last: from here on nothing may change a setting, write, or call a table function.
        {"name": "readonly", "value": _field("UInt64", 1)},
    ]
    subquery = {"type": "Subquery", "children": [tree]}
    select = {
        "type": "SelectQuery",
        "select": {"type": "ExpressionList", "children": [{"type": "Asterisk"}]},
        "tables": {
            "type": "TablesInSelectQuery",
            "children": [
                {"type": "TablesInSelectQueryElement", "table_expression": {"type": "TableExpression", "subquery": subquery}}
            ],
        },
        "settings": {"type": "SetQuery", "changes": changes},
    }
    return {
        "type": "SelectWithUnionQuery",
        "union_mode": "UNION_DEFAULT",
        "list_of_selects": {"type": "ExpressionList", "children": [select]},
        "is_outfile_append": False,
        "is_outfile_truncate": False,
        "is_into_outfile_with_stdout": False,
    }


def _field(field_type: str, value: Any) -> dict[str, Any]:
    return {"field_type": field_type, "value": value}


def _string_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def printed(store: ClickHouseStore, tree: dict[str, Any]) -> str:
    rows = await store.query("SELECT formatQueryFromJSON({tree:String}) AS sql", {"tree": orjson.dumps(tree).decode()})
    return str(rows[0]["sql"])


def bound(params: dict[str, Any], used: set[str]) -> dict[str, Any]:
    """The parameters, each one the query names, and every one it names given. Values stay
    typed (str, number, bool, list): the driver writes them in ClickHouse's text form and
    ClickHouse parses them by the `{name:Type}` the query declares."""
    for name, value in params.items():
        if not _PARAMETER_NAME.match(name):
            raise Refused(f"parameter names are identifiers, got {name!r}", field=f"params.{name}")
        if name not in used:
            raise Refused(f"the query has no parameter {{{name}:Type}}", field=f"params.{name}")
        if isinstance(value, list) and any(isinstance(item, list) for item in value):
            raise Refused("a parameter is a string, number, boolean or a list of them", field=f"params.{name}")
    missing = sorted(used - set(params))
    if missing:
        raise Refused(f"the query's parameter {missing[0]} has no value in params", field=f"params.{missing[0]}")
    return dict(params)


def _text_format(tree: dict[str, Any], formats: Collection[str]) -> str | None:
    """Takes a trailing `FORMAT X` off the tree when X is one of `formats` (what ClickHouse
    clients append over HTTP); anything else stays, for the check to refuse."""
    node = tree.get("format_ast")
    if not formats or not isinstance(node, dict) or node.get("type") != "Identifier" or set(node) - {"type", "name"}:
        return None
    if node.get("name") not in formats:
        raise Refused(f"FORMAT {node.get('name')} is not served here; use one of {', '.join(sorted(formats))}")
    del tree["format_ast"]
    return str(node["name"])


@dataclass(frozen=True)
class _Plan:
    sql: str
    parameters: frozenset[str]
    text_format: str | None


async def guard(
    store: ClickHouseStore,
    catalog: Catalog,
    sql: str,
    params: dict[str, Any],
    organization_id: str | None,
    limits: Limits,
    *,
    formats: Collection[str] = (),
) -> Checked:
    """The checked, printed query. The same text for the same organization (a dashboard's
    panels, a notebook re-run) is checked once: the printed text depends on nothing else
    but the database's table names, which are part of the key; parameter values are bound
    afresh each time."""
    tables = await catalog.database_tables(store)
    key = (sql, organization_id, limits, tuple(sorted(formats)), tables)
    plan = catalog.plans.get(key)
    if plan is None:
        tree = await parse(store, sql)
        text_format = _text_format(tree, formats)
        used = check(tree, catalog, tables, store.database)
        printed_sql = await printed(store, wrapped(tree, store.database, organization_id, limits))
        plan = catalog.plans[key] = _Plan(printed_sql, frozenset(used), text_format)
    return Checked(plan.sql, bound(params, set(plan.parameters)), plan.text_format)
