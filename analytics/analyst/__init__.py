"""Analyst SQL: one read-only SELECT over the documented tables, confined to the caller's organization.

    catalog.py   which tables and functions an analyst may use; the data dictionary (column COMMENTs)
    guard.py     parse with ClickHouse's own parser (parseQueryToJSON), check the tree, print it back
                 wrapped with the engine settings that enforce the organization and the limits
    run.py       run the printed query in the asked format; engine errors -> 4xx naming the limit
    audit.py     one `analyst_queries` row per query, refused ones included
    slots.py     concurrent queries per organization
    handlers.py  POST /api/v1/query, GET /api/v1/query/schema
"""
