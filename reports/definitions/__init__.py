"""Report types and how a job's parameters shape them.

- request.py: the requester's scope and the job's parameters as SQL;
- records.py: each report's query at its own grain;
- grouped.py: the queries of a report re-aggregated by `groupBy`;
- catalog.py: the report types (columns, measures, dimensions, summary, chart);
- shape.py: what `groupBy` and `measures` make of a report, and their 400s.
"""

from reports.definitions.catalog import DEFINITIONS, Definition
from reports.definitions.request import Request, request_for
from reports.definitions.shape import Shape, available_measures, check, shape

__all__ = ["DEFINITIONS", "Definition", "Request", "Shape", "available_measures", "check", "request_for", "shape"]
