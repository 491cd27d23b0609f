"""What `parameters.groupBy` and `parameters.measures` make of a report.

- `groupBy` (dimension lookup values, in order) re-aggregates the report
  by those dimensions (reports/definitions/grouped.py); absent, or equal
  to the report's own grain, the report keeps its own query.
- `measures` (measure-type lookup values) selects and orders the measure
  columns; the other columns (identifiers, a record's details) are always
  kept, first. Absent: the report's own measures that exist at that grain.

`check` is the 400 of a combination a report type cannot answer, naming
`parameters.groupBy` or `parameters.measures` and listing what that
report type allows; `shape` is the columns, query, summary and chart of a
checked job.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from lms_events.errors import BadRequest
from reports.definitions.catalog import DEFINITIONS, Definition
from reports.definitions.grouped import COLUMNS, TIME_GRAINS
from reports.definitions.request import Request
from reports.models import Parameters

GROUP_BY, MEASURES = "parameters.groupBy", "parameters.measures"
# Columns a grouped report's summary adds up (each row counts its own events, hours, ...).
_ADDITIVE = {
    "events": "Events",
    "learningHours": "Learning hours",
    "coursesEnrolled": "Enrollments",
    "coursesCompleted": "Completions",
    "attempts": "Attempts",
}


@dataclass(frozen=True)
class Shape:
    columns: tuple[str, ...]
    query: Callable[[Request], str]
    summary: dict[str, str]
    # (label expression, value column) of the PDF's bar chart
    chart: tuple[str, str]
    chronological: bool


def _grouping(definition: Definition, parameters: Parameters) -> tuple[str, ...] | None:
    """The dimensions of a grouped report; None for the report at its own grain."""
    group_by = tuple(parameters.group_by or ())
    return None if not group_by or group_by == definition.grain else group_by


def available_measures(definition: Definition, dimensions: tuple[str, ...] | None) -> tuple[str, ...]:
    """The measures a report has at this grain (None: its own)."""
    if dimensions is None:
        own = set(definition.columns)
        return tuple(m for m, columns in definition.measures.items() if set(columns) <= own)
    return tuple(
        measure
        for measure in definition.measures
        if (allowed := definition.only_by.get(measure)) is None or set(dimensions) <= allowed
    )


def _default_measures(definition: Definition, dimensions: tuple[str, ...] | None) -> tuple[str, ...]:
    return tuple(m for m in available_measures(definition, dimensions) if m not in definition.grouped_only)


def check(report_type: str, parameters: Parameters) -> None:
    definition = DEFINITIONS.get(report_type)
    if definition is None:
        return  # reportType itself is checked against the lookup values
    group_by = tuple(parameters.group_by or ())
    if group_by:
        if not definition.dimensions:
            raise BadRequest(f"{report_type} lists records: it takes no groupBy", field=GROUP_BY)
        wrong = [d for d in group_by if d not in definition.dimensions]
        if wrong:
            raise BadRequest(
                f"{report_type} cannot be grouped by {wrong[0]}; its dimensions: {', '.join(definition.dimensions)}",
                field=GROUP_BY,
            )
        if len(set(group_by)) != len(group_by):
            raise BadRequest("groupBy names a dimension twice", field=GROUP_BY)
        grains = [d for d in group_by if d in TIME_GRAINS]
        if len(grains) > 1:
            raise BadRequest(f"groupBy takes one time grain ({', '.join(TIME_GRAINS)}); got {', '.join(grains)}", field=GROUP_BY)
        if definition.needs_time and not grains:
            raise BadRequest(f"{report_type} is a series over time: groupBy holds one of {', '.join(TIME_GRAINS)}", field=GROUP_BY)
    measures = parameters.measures or ()
    if not measures:
        return
    if not definition.measures:
        raise BadRequest(f"{report_type} lists records: it has no measures to select", field=MEASURES)
    dimensions = _grouping(definition, parameters)
    allowed = available_measures(definition, dimensions)
    for measure in measures:
        if measure not in allowed:
            grain = ", ".join(dimensions or definition.grain)
            raise BadRequest(
                f"{report_type} by {grain} has no measure {measure}; its measures there: {', '.join(allowed)}", field=MEASURES
            )
    if len(set(measures)) != len(measures):
        raise BadRequest("measures names a measure twice", field=MEASURES)


def _uses(sql: str, definition: Definition, columns: tuple[str, ...]) -> bool:
    """Whether a summary aggregate reads only columns the report keeps."""
    known = set(definition.columns) | definition.measure_columns()
    return all(name in columns for name in re.findall(r"\w+", sql) if name in known)


def shape(definition: Definition, parameters: Parameters) -> Shape:
    """The report a checked job asks for."""
    dimensions = _grouping(definition, parameters)
    measures = tuple(parameters.measures or ()) or _default_measures(definition, dimensions)
    selected = [column for measure in measures for column in definition.measures.get(measure, ())]
    if not parameters.measures:  # the report's own order
        order = {column: n for n, column in enumerate(definition.columns)}
        selected.sort(key=lambda column: order.get(column, len(order)))
    if dimensions is None:
        kept = [c for c in definition.columns if c not in definition.measure_columns()]
        columns = tuple(kept + selected)
        summary = {label: sql for label, sql in definition.summary.items() if _uses(sql, definition, columns)}
        label, value = definition.chart
        chronological = definition.chronological
        query = definition.query
    else:
        keys = [COLUMNS[d] for d in dimensions]
        columns = tuple(keys + selected)
        summary = {"Rows": "count()"} | {title: f"round(sum({c}), 2)" for c, title in _ADDITIVE.items() if c in columns}
        label = keys[0] if len(keys) == 1 else "concat(" + ", ' / ', ".join(f"toString({k})" for k in keys) + ")"
        value = definition.chart[1]
        chronological = dimensions[0] in TIME_GRAINS
        grouped, by = definition.grouped, dimensions
        if grouped is None or not set(dimensions) <= set(definition.dimensions):
            # check() lets no such job in; one stored by another version of the API fails here
            raise ValueError(f"{definition.id} cannot be grouped by {', '.join(dimensions)}")
        query = lambda r: grouped(r, by)  # noqa: E731
    if value not in columns:
        value = selected[0] if selected else columns[-1]
    return Shape(columns, query, summary, (label, value), chronological)
